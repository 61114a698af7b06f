/*
 * commands.h - the `ota` commands: each lives in its own cmd_*.c file and is listed
 * in main.c's table with its usage text.
 */
#ifndef OTA_TOOL_COMMANDS_H
#define OTA_TOOL_COMMANDS_H

/* Each takes argv from the command's name on (argv[0] is "upload", ...) and returns
 * an OTA_EXIT_* code (client.h). */
int cmd_upload(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_discover(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_codegen(int argc, char **argv);
int cmd_hash_password(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_key_digest(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_pull_now(int argc, char **argv);

extern const char upload_usage[];
extern const char run_usage[];
extern const char logs_usage[];
extern const char discover_usage[];
extern const char config_usage[];
extern const char codegen_usage[];
extern const char hash_password_usage[];
extern const char keygen_usage[];
extern const char sign_usage[];
extern const char image_usage[];
extern const char key_digest_usage[];
extern const char publish_usage[];
extern const char manifest_usage[];
extern const char pull_now_usage[];

#endif

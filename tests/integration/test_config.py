"""Node configuration in YAML: a table of valid files (both forms, every default, each
time unit) with their resolved settings, a table of invalid files with the exact
line:column and message of each error, and codegen output that compiles."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodelib import run_ota  # noqa: E402

VALID = [
    # (yaml, expected lines of `ota config`)
    ("""
     esphome:
       name: livingroom
     esp32:
       board: esp32dev
     ota:
       safe_mode: True
       password: VERYSECURE
     """, ["name:               livingroom (host livingroom.local)",
           "platform:           esp32, board esp32dev", "ota port:           3232",
           "ota id:             ota", "protocol version:   2",
           "password:           set (stored on the node as a salted verifier)",
           "safe mode:          on", "  num_attempts:     10",
           "  boot_is_good_after: 60000 ms", "  reboot_timeout:   300000 ms",
           "rollback_after:     3 boots", "logger:             off",
           "mdns:               on, answers livingroom.local and advertises _ota._tcp"]),
    ("""
     esphomeyaml:
       name: kitchen
       platform: ESP8266
       board: nodemcuv2
     ota:
       port: 8267
       id: kitchen_ota
       safe_mode: false
       num_attempts: 4
       reboot_timeout: 2min
     """, ["platform:           esp8266, board nodemcuv2", "ota port:           8267",
           "ota id:             kitchen_ota", "password:           not set",
           "safe mode:          off", "  num_attempts:     4", "  reboot_timeout:   120000 ms"]),
    ("""
     esphome:
       name: garage
     esp8266:
       board: d1_mini
     """, ["platform:           esp8266, board d1_mini", "ota:                not configured"]),
    ("""
     esphome:
       name: node-2
     host:
     logger:
       port: 4000
     wifi:
       ssid: home
     ota:
       - platform: web_server
       - platform: esphome
         id: fw
         version: 1
         password: pw
         legacy_auth: true
         allow_md5: yes
         rollback_after: 5
     safe_mode:
       disabled: false
       num_attempts: 3
       boot_is_good_after: 500ms
       reboot_timeout: 1h
     """, ["platform:           host", "ota port:           3232", "ota id:             fw",
           "protocol version:   1",
           "legacy auth:        SHA-256 and MD5 (plain password on the node)",
           "  num_attempts:     3", "  boot_is_good_after: 500 ms",
           "  reboot_timeout:   3600000 ms", "rollback_after:     5 boots",
           "logger:             on, log viewers on port 4000"]),
    ("""
     esphome:
       name: secretive
     host:
     ota:
       - platform: esphome
         password: !secret ota_password
     safe_mode:
       disabled: true
       boot_is_good_after: 45s
       reboot_timeout: 1min
     """, ["password:           set (stored on the node as a salted verifier)",
           "safe mode:          off", "  boot_is_good_after: 45000 ms",
           "  reboot_timeout:   60000 ms"]),
    ("""
     esphome:
       name: hidden
     host:
     ota:
     mdns:
       disabled: true
     """, ["mdns:               off"]),
]

INVALID = [
    # (yaml, expected error after "FILE:")
    ("""
     esphome:
       name: x
     host:
     mdns:
       disabled: sometimes
     """, "5:13: disabled must be true or false, not 'sometimes'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       pasword: y
     """, "5:3: unknown key 'pasword' in ota (did you mean 'password'?)"),
    ("""
     esphome:
       name: x
     host:
     ota:
       port: 70000
     """, "5:9: port must be between 1 and 65535, not 70000"),
    ("""
     esphome:
       name: x
     host:
     ota:
       port: eighty
     """, "5:9: port must be a whole number, not 'eighty'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       safe_mode: maybe
     """, "5:14: safe_mode must be true or false, not 'maybe'"),
    ("""
     esphome:
       name: x
     host:
     safe_mode:
       reboot_timeout: 5 minutes
     """, "5:19: reboot_timeout must be a time such as 500ms, 60s, 5min or 1h, not '5 minutes'"),
    ("""
     esphome:
       name: x
     host:
     ota:
       password: !secret missing_one
     """, "5:13: secret 'missing_one' is not defined in {dir}/secrets.yaml"),
    ("""
     esphome:
       name: Living Room
     host:
     """, "2:9: name 'Living Room' may contain only lowercase letters, digits and '-' (it "
          "becomes the host name Living Room.local)"),
    ("""
     esphome:
       name: x
     esp32:
     ota:
       - platform: esphome
         id: 2fast
     """, "6:9: id '2fast' must be a C identifier (letters, digits, '_', not starting with a "
          "digit)"),
    ("""
     esphome:
       name: x
     wiif:
       ssid: a
     """, "3:1: unknown key 'wiif' in the configuration (did you mean 'wifi'?)"),
    ("""
     esphome:
       name: x
     """, "1:1: no platform: add an esp32:, esp8266: or host: block (or platform: under "
          "esphome:)"),
    ("""
     esphome:
       name: x
       platform: ESP31
     """, "3:13: platform must be ESP32, ESP8266 or HOST, not 'ESP31'"),
    ("""
     ota:
       password: x
     """, "1:1: missing esphome: block with the node's name"),
    ("""
     esphome: [
     """, "2:1: not valid YAML: did not find expected node content while parsing a flow node"),
    ("", "the file is empty: expected a node configuration with esphome: (name) and ota:"),
    ("""
     - just
     - a list
     """, "1:1: a node configuration must be a mapping of components (esphome:, ota:, ...), not "
          "a list"),
]


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ota-cfg-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        with open(os.path.join(self.dir, "secrets.yaml"), "w") as f:
            f.write("ota_password: VERYSECURE\n")

    def write(self, text, name="node.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
        return path

    def test_valid_files(self):
        for i, (text, expected) in enumerate(VALID):
            with self.subTest(case=i):
                path = self.write(text)
                rc, out, err = run_ota("config", path)
                self.assertEqual(rc, 0, err)
                for line in expected:
                    self.assertIn(line + "\n", out)
                self.assertNotIn("VERYSECURE", out)
                self.assertNotIn("pw\n", out)

    def test_invalid_files(self):
        for i, (text, expected) in enumerate(INVALID):
            with self.subTest(case=i):
                path = self.write(text)
                rc, out, err = run_ota("config", path)
                self.assertEqual(rc, 6, out)
                self.assertEqual(err.strip(),
                                 "error: %s:%s" % (path, expected.format(dir=self.dir))
                                 if expected[0].isdigit() else "error: %s: %s" % (path, expected))

    def test_codegen_compiles_and_holds_no_password(self):
        path = self.write(VALID[0][0])
        out = os.path.join(self.dir, "settings.h")
        rc, _, err = run_ota("codegen", path, "-o", out)
        self.assertEqual(rc, 0, err)
        text = open(out).read()
        self.assertNotIn("VERYSECURE", text)
        self.assertIn('#define OTA_NODE_VERIFIER "SCRAM-SHA-256$10000:', text)
        self.assertIn("#define OTA_NODE_LEGACY_PASSWORD NULL", text)
        src = os.path.join(self.dir, "use.c")
        with open(src, "w") as f:
            f.write('#include <stddef.h>\n#include "settings.h"\n'
                    'int main(void) { return OTA_NODE_PORT == 3232 && OTA_NODE_VERIFIER != NULL'
                    ' ? 0 : 1; }\n')
        subprocess.run(["cc", "-Wall", "-Werror", "-I", self.dir, src, "-o", src + ".bin"],
                       check=True)
        self.assertEqual(subprocess.run([src + ".bin"]).returncode, 0)
        # legacy_auth writes the plain password, and says so
        legacy = self.write(VALID[3][0], "legacy.yaml")
        rc, text, err = run_ota("codegen", legacy)
        self.assertEqual(rc, 0, err)
        self.assertIn("legacy_auth puts the plain OTA password into the firmware", err)
        self.assertIn('"pw"', text)
        self.assertIn("#define OTA_NODE_MDNS 1", text)
        # mdns: disabled: true reaches the firmware
        quiet = self.write(VALID[-1][0], "quiet.yaml")
        rc, text, err = run_ota("codegen", quiet)
        self.assertEqual(rc, 0, err)
        self.assertIn("#define OTA_NODE_MDNS 0", text)


if __name__ == "__main__":
    unittest.main()

/*
 * tcp_copy - the baseline of the upload benchmark: copies a file over a plain
 * loopback TCP connection (one process sends, the other receives and discards) and
 * prints the seconds it took. Usage: tcp_copy FILE
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tcp_copy FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "tcp_copy: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        perror("listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
            _exit(1);
        for (long off = 0; off < size;) {
            ssize_t w = send(s, data + off, (size_t)(size - off), 0);
            if (w <= 0)
                _exit(1);
            off += w;
        }
        close(s);
        _exit(0);
    }
    double t0 = now_s();
    int c = accept(ls, NULL, NULL);
    static char buf[1 << 16];
    long got = 0;
    ssize_t n;
    while ((n = recv(c, buf, sizeof buf, 0)) > 0)
        got += n;
    double t = now_s() - t0;
    int status;
    waitpid(pid, &status, 0);
    if (got != size) {
        fprintf(stderr, "tcp_copy: received %ld of %ld bytes\n", got, size);
        return 1;
    }
    printf("%.6f\n", t);
    free(data);
    return 0;
}

/*
 * linkemu - the packet forwarder of the link emulator (bench/linkemu.py sets up the
 * network namespaces and starts it). Each link joins two TUN devices, one in the
 * uploader's namespace and one in a node's: every IP packet read from one end is
 * written to the other after a token bucket (the bandwidth cap, one per direction)
 * and a one-way delay, like `tc qdisc netem delay D rate R` (this kernel has no
 * netem). Both ends run their own unmodified TCP stacks, so slow start, windows,
 * delayed acks and losses at the bottleneck are real, unlike in a TCP relay.
 *
 *   linkemu --delay-ms D --mbit R [--limit BYTES] [--burst BYTES] NS_A/DEV_A=NS_B/DEV_B...
 *
 * The devices must exist (`ip tuntap add mode tun`); NS is a name under /var/run/netns.
 * Each packet's departure time is computed when it arrives (FIFO token bucket, then
 * the delay), so a forwarder that is scheduled late on a busy machine delivers the
 * overdue packets at once and keeps the average rate. A packet that would make the
 * queue waiting for the bucket exceed --limit bytes is dropped (a router's tail drop).
 * Commands on stdin, one byte each: 's' prints one line per link, "LINK a2b_bytes
 * a2b_pkts a2b_drops b2a_bytes b2a_pkts b2a_drops" (IP bytes, headers included), then
 * "end"; 'z' zeroes the counters. End of stdin: exit (the devices stay, the namespace
 * owns them).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES 2048 /* TUN MTU is 1500: a packet always fits */
#define MAX_LINKS 64

struct pkt {
    int64_t due_ns; /* when it reaches the far end */
    uint16_t len;
    uint8_t data[SLOT_BYTES];
};

struct dir {
    int in_fd, out_fd;
    struct pkt *ring;
    size_t cap, head, count;
    int64_t bucket_t_ns;  /* time of the last departure */
    double bucket_tokens; /* tokens (bytes) left at bucket_t_ns */
    uint64_t bytes, pkts, drops;
};

struct link {
    struct dir d[2]; /* 0: A to B, 1: B to A */
};

static struct link links[MAX_LINKS];
static int nlinks;
static int64_t delay_ns;
static double rate_bpns; /* bytes per nanosecond; 0: no cap */
static double limit_bytes, burst_bytes;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_tun(const char *ns, const char *dev)
{
    char path[256];
    snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "linkemu: namespace %s: %s\n", ns, strerror(errno));
        exit(1);
    }
    close(nsfd);
    /* the TUN fd stays bound to the device of the namespace it was opened in */
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
        fprintf(stderr, "linkemu: tun %s in %s: %s\n", dev, ns, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Token bucket in FIFO order: the packet leaves at the first moment, not before the
 * previous one, when the bucket holds len tokens. */
static int64_t depart_time(struct dir *d, int64_t arrive, size_t len, double *backlog)
{
    if (rate_bpns <= 0) {
        *backlog = 0;
        return arrive;
    }
    int64_t t0 = arrive > d->bucket_t_ns ? arrive : d->bucket_t_ns;
    double tokens = d->bucket_tokens + (double)(t0 - d->bucket_t_ns) * rate_bpns;
    if (tokens > burst_bytes)
        tokens = burst_bytes;
    int64_t t = t0;
    if (tokens < (double)len)
        t = t0 + (int64_t)(((double)len - tokens) / rate_bpns + 0.5);
    /* bytes still waiting for the bucket when this one arrives */
    *backlog = (double)(t - arrive) * rate_bpns;
    return t;
}

static void receive(struct dir *d)
{
    for (;;) {
        struct pkt tmp;
        ssize_t n = read(d->in_fd, tmp.data, sizeof(tmp.data));
        if (n <= 0)
            return; /* EAGAIN: drained */
        int64_t arrive = now_ns();
        double backlog;
        if (d->count == d->cap) {
            d->drops++;
            continue;
        }
        int64_t dep = depart_time(d, arrive, (size_t)n, &backlog);
        if (backlog + (double)n > limit_bytes) {
            d->drops++;
            continue;
        }
        /* commit the bucket state only for a packet that is queued */
        int64_t t0 = arrive > d->bucket_t_ns ? arrive : d->bucket_t_ns;
        double tokens = d->bucket_tokens + (double)(t0 - d->bucket_t_ns) * rate_bpns;
        if (tokens > burst_bytes)
            tokens = burst_bytes;
        tokens += (double)(dep - t0) * rate_bpns - (double)n;
        d->bucket_tokens = rate_bpns > 0 ? tokens : 0;
        d->bucket_t_ns = dep;
        struct pkt *p = &d->ring[(d->head + d->count) % d->cap];
        p->due_ns = dep + delay_ns;
        p->len = (uint16_t)n;
        memcpy(p->data, tmp.data, (size_t)n);
        d->count++;
        d->bytes += (uint64_t)n;
        d->pkts++;
    }
}

/* Delivers what is due; returns the time of the next due packet, or -1. */
static int64_t deliver(struct dir *d, int64_t now)
{
    while (d->count > 0) {
        struct pkt *p = &d->ring[d->head];
        if (p->due_ns > now)
            return p->due_ns;
        if (write(d->out_fd, p->data, p->len) < 0)
            d->drops++; /* the far end's queue is full: lost on the wire */
        d->head = (d->head + 1) % d->cap;
        d->count--;
    }
    return -1;
}

static void stats(void)
{
    for (int i = 0; i < nlinks; i++) {
        struct dir *a = &links[i].d[0], *b = &links[i].d[1];
        printf("%d %llu %llu %llu %llu %llu %llu\n", i, (unsigned long long)a->bytes,
               (unsigned long long)a->pkts, (unsigned long long)a->drops,
               (unsigned long long)b->bytes, (unsigned long long)b->pkts,
               (unsigned long long)b->drops);
    }
    printf("end\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double delay_ms = 0, mbit = 0;
    limit_bytes = -1;
    burst_bytes = 3000; /* two full packets: close to pure pacing */
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            break;
        double v = atof(argv[i + 1]);
        if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = v;
        else if (strcmp(argv[i], "--mbit") == 0)
            mbit = v;
        else if (strcmp(argv[i], "--limit") == 0)
            limit_bytes = v;
        else if (strcmp(argv[i], "--burst") == 0)
            burst_bytes = v;
        else
            break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: linkemu --delay-ms D --mbit R [--limit B] [--burst B] "
                        "NS_A/DEV_A=NS_B/DEV_B...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    delay_ns = (int64_t)(delay_ms * 1e6);
    rate_bpns = mbit * 1e6 / 8 / 1e9;
    if (limit_bytes < 0) /* a bandwidth-delay product of buffer (two one-way delays) */
        limit_bytes = rate_bpns > 0 ? rate_bpns * 2.0 * (double)delay_ns : 1e12;
    if (limit_bytes < 64 * 1024)
        limit_bytes = 64 * 1024;
    /* room for the packets in flight over the delay plus a full queue of small ones */
    double inflight = rate_bpns > 0 ? rate_bpns * (double)delay_ns : 4e6;
    size_t cap = (size_t)((inflight + limit_bytes) / 512.0) + 512;
    for (; i < argc; i++) {
        if (nlinks == MAX_LINKS) {
            fprintf(stderr, "linkemu: at most %d links\n", MAX_LINKS);
            return 2;
        }
        char spec[512], *eq, *s1, *s2;
        snprintf(spec, sizeof(spec), "%s", argv[i]);
        eq = strchr(spec, '=');
        if (eq == NULL)
            return 2;
        *eq = 0;
        s1 = strchr(spec, '/');
        s2 = strchr(eq + 1, '/');
        if (s1 == NULL || s2 == NULL)
            return 2;
        *s1 = 0;
        *s2 = 0;
        int fa = open_tun(spec, s1 + 1), fb = open_tun(eq + 1, s2 + 1);
        struct link *l = &links[nlinks++];
        l->d[0].in_fd = fa;
        l->d[0].out_fd = fb;
        l->d[1].in_fd = fb;
        l->d[1].out_fd = fa;
        for (int k = 0; k < 2; k++) {
            l->d[k].cap = cap;
            l->d[k].ring = calloc(cap, sizeof(struct pkt));
            l->d[k].bucket_tokens = burst_bytes;
            if (l->d[k].ring == NULL)
                return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    struct pollfd pfd[2 * MAX_LINKS + 1];
    for (;;) {
        int n = 0;
        pfd[n].fd = 0;
        pfd[n++].events = POLLIN;
        for (int k = 0; k < nlinks; k++)
            for (int j = 0; j < 2; j++) {
                pfd[n].fd = links[k].d[j].in_fd;
                pfd[n++].events = POLLIN;
            }
        int64_t now = now_ns(), next = -1;
        for (int k = 0; k < nlinks; k++)
            for (int j = 0; j < 2; j++) {
                int64_t t = deliver(&links[k].d[j], now);
                if (t >= 0 && (next < 0 || t < next))
                    next = t;
            }
        struct timespec ts, *tsp = NULL;
        if (next >= 0) {
            int64_t w = next - now_ns();
            if (w < 0)
                w = 0;
            ts.tv_sec = w / 1000000000;
            ts.tv_nsec = w % 1000000000;
            tsp = &ts;
        }
        if (ppoll(pfd, (nfds_t)n, tsp, NULL) < 0 && errno != EINTR)
            return 1;
        if (pfd[0].revents) {
            char c;
            ssize_t r = read(0, &c, 1);
            if (r <= 0)
                return 0;
            if (c == 's')
                stats();
            if (c == 'z')
                for (int k = 0; k < nlinks; k++)
                    for (int j = 0; j < 2; j++) {
                        links[k].d[j].bytes = 0;
                        links[k].d[j].pkts = 0;
                        links[k].d[j].drops = 0;
                    }
        }
        for (int k = 0; k < nlinks; k++)
            for (int j = 0; j < 2; j++)
                if (pfd[1 + 2 * k + j].revents)
                    receive(&links[k].d[j]);
    }
}

/*
 * The open-loop generator's engine: sends one HTTP/1.1 request at each due time over
 * keep-alive connections and times every answer from its due time.
 *
 * `_open_loop.py` draws the schedule, writes the request and the due times to files,
 * builds this program with the machine's C compiler and runs it pinned to a core; it
 * reads back one record per request and computes the statistics. In C, not Python,
 * because the generator's own latency was most of what it measured: the asyncio
 * generator kept its core about 80 % busy at 2,500 requests/s (spinning to send on
 * time) and its p99 against a server that answers at once was 1.5-5 ms. Here one
 * thread waits in epoll_pwait2 with a nanosecond timeout (timer slack 1 µs) until the
 * next request is due or an answer arrives.
 *
 * Semantics (those of the Python generator it replaces):
 * - every connection is opened before the first request is due; failing that, exit 3;
 * - a due request goes to a free connection (one request per connection at a time),
 *   else it waits, first come first served, its latency still counted from its due time;
 * - free connections are taken in the order they became free (a ring, not a stack), so
 *   every connection carries requests in turn and idles about CONNECTIONS / rate
 *   seconds: above CONNECTIONS / 5 requests/s none sits idle long enough for the
 *   server's keep-alive timeout (uvicorn's is 5 s) to close it just as a request is
 *   written on it, which a stack's least used connections did at any rate;
 * - latency runs from the due time to the last byte of the answer; "lag" is how late the
 *   generator noticed the request was due, "wait" how late it was written on a connection;
 * - answers need a status line and Content-Length; anything else, a reset or a close
 *   mid-answer is a socket error, and the connection is reopened for the next request;
 *   "Connection: close" in an answer closes the connection after it;
 * - a request unanswered `timeout` seconds after it was written is a timeout (its
 *   connection is reopened); the run stops `timeout` + 1 s after the last due time and
 *   whatever is unanswered then is a timeout too.
 *
 * Usage: openloop HOST PORT REQUEST_FILE DUE_FILE CONNECTIONS TIMEOUT_S OUT_FILE
 *   DUE_FILE: native float64 due times in seconds from the start, non-decreasing.
 *   OUT_FILE: float64 duration (first due time to last answer), then per request
 *   {float64 lag, wait, latency; int32 status, outcome}, outcome 0 unanswered
 *   (timeout), 1 answered, 2 socket error.
 * Exit status: 0 run done, 2 bad arguments or files, 3 connections could not be opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define START_DELAY_S 0.01
#define MAX_HEAD 65536
#define OUTCOME_ANSWERED 1
#define OUTCOME_SOCKET_ERROR 2

typedef struct {
    double lag, wait, latency;
    int32_t status, outcome;
} record_t;

typedef struct {
    int fd;
    long req;        /* request in flight, or -1 */
    double sent;     /* when it was written in full */
    size_t written;  /* bytes of the request written */
    int want_write;  /* EPOLLOUT registered */
    char *buf;
    size_t have, cap;
} conn_t;

static struct addrinfo *address;
static int epoll_fd;
static const char *request;
static size_t request_len;
static double *due;
static record_t *records;
static double timeout_s;
static double last_done = -1.0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *must_alloc(size_t size) {
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        exit(2);
    }
    return p;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = must_alloc((size_t)size + 1);
    if (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* A new connected, non-blocking socket registered for reading, or -1 (errno set). */
static int open_socket(int index) {
    int fd = socket(address->ai_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, address->ai_addr, address->ai_addrlen) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void drop(conn_t *c) {
    if (c->fd >= 0) close(c->fd); /* closing also removes it from the epoll set */
    c->fd = -1;
    c->req = -1;
    c->have = 0;
    c->want_write = 0;
}

static void watch_writes(conn_t *c, int index, int on) {
    if (c->want_write == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)index};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = on;
}

static void fail(conn_t *c) {
    if (c->req >= 0) records[c->req].outcome = OUTCOME_SOCKET_ERROR;
    drop(c);
}

/* Write what is left of the request; on a full socket buffer, wait for EPOLLOUT. */
static void push(conn_t *c, int index) {
    while (c->written < request_len) {
        ssize_t n = write(c->fd, request + c->written, request_len - c->written);
        if (n > 0) {
            c->written += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch_writes(c, index, 1);
            return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            fail(c);
            return;
        }
    }
    watch_writes(c, index, 0);
    c->sent = now();
}

/* Start request `req` on connection `c` (reopening it first if needed). */
static void start(conn_t *c, int index, long req) {
    records[req].wait = now() - due[req];
    if (c->fd < 0 && (c->fd = open_socket(index)) < 0) {
        c->fd = -1;
        records[req].outcome = OUTCOME_SOCKET_ERROR;
        return;
    }
    c->req = req;
    c->written = 0;
    c->sent = now();
    push(c, index);
}

/* Find `needle` in the first `len` bytes of `head`, ignoring case. */
static const char *find_nocase(const char *head, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(head + i, needle, n) == 0) return head + i;
    return NULL;
}

/* Parse complete answers in the buffer. Returns 1 if the connection is free again. */
static int parse(conn_t *c) {
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (!end) {
        if (c->have > MAX_HEAD) fail(c);
        return 0;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    const char *b = c->buf;
    if (c->req < 0 || head_len < 16 || strncmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ' ||
        b[9] < '0' || b[9] > '9' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9') {
        fail(c);
        return 0;
    }
    const char *field = find_nocase(b, head_len, "\r\ncontent-length:");
    if (!field) {
        fail(c);
        return 0;
    }
    char *stop;
    const char *digits = field + 17;
    while (*digits == ' ' || *digits == '\t') digits++;
    unsigned long long length = strtoull(digits, &stop, 10);
    if (stop == digits || (*stop != '\r' && *stop != ' ' && *stop != '\t')) {
        fail(c);
        return 0;
    }
    size_t total = head_len + (size_t)length;
    if (c->have < total) {
        if (total > c->cap) {
            char *grown = realloc(c->buf, total);
            if (!grown) {
                fail(c);
                return 0;
            }
            c->buf = grown;
            c->cap = total;
        }
        return 0;
    }
    double done = now();
    record_t *r = &records[c->req];
    r->latency = done - due[c->req];
    r->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    r->outcome = OUTCOME_ANSWERED;
    last_done = done;
    int close_after = find_nocase(b, head_len, "\r\nconnection: close") != NULL;
    c->req = -1;
    if (close_after || c->have > total) {
        drop(c); /* closed by the server, or more than one answer: start afresh */
    } else {
        c->have = 0;
    }
    return 1;
}

/* Read what arrived. Returns 1 if the request in flight is done (answered or failed). */
static int readable(conn_t *c) {
    int busy = c->req >= 0, eof = 0;
    for (;;) {
        if (c->have == c->cap) {
            char *grown = realloc(c->buf, c->cap * 2);
            if (!grown) {
                fail(c);
                return busy;
            }
            c->buf = grown;
            c->cap *= 2;
        }
        ssize_t n = read(c->fd, c->buf + c->have, c->cap - c->have);
        if (n > 0) {
            c->have += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            eof = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            break;
        }
    }
    if (!busy) { /* an idle connection closed, or sent what nobody asked for */
        if (eof || c->have) drop(c);
        return 0;
    }
    if (parse(c)) {
        if (eof) drop(c);
        return 1;
    }
    if (c->req < 0) return 1; /* parse failed it */
    if (eof) {
        fail(c);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT REQUEST_FILE DUE_FILE CONNECTIONS TIMEOUT_S OUT_FILE\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    request = read_file(argv[3], &request_len);
    size_t due_bytes;
    due = (double *)read_file(argv[4], &due_bytes);
    long total = (long)(due_bytes / sizeof(double));
    int connections = atoi(argv[5]);
    timeout_s = atof(argv[6]);
    if (total < 1 || connections < 1 || !(timeout_s > 0)) {
        fprintf(stderr, "need at least one due time, one connection and a positive timeout\n");
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(host, port, &hints, &address);
    if (gai != 0) {
        fprintf(stderr, "Could not open %d connections to %s:%s: %s\n", connections, host, port,
                gai_strerror(gai));
        return 3;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    epoll_fd = epoll_create1(0);
    records = must_alloc(sizeof(record_t) * (size_t)total);
    conn_t *conns = must_alloc(sizeof(conn_t) * (size_t)connections);
    /* free connections: a ring, taken from free_head, given back at the end */
    int *free_list = must_alloc(sizeof(int) * (size_t)connections);
    int free_head = 0;
    long *waiting = must_alloc(sizeof(long) * (size_t)total); /* FIFO of due requests */
    int free_count = 0;
    for (int i = 0; i < connections; i++) {
        conn_t *c = &conns[i];
        c->req = -1;
        c->cap = 16384;
        c->buf = must_alloc(c->cap);
        if ((c->fd = open_socket(i)) < 0) {
            fprintf(stderr, "Could not open %d connections to %s:%s: %s\n", connections, host,
                    port, strerror(errno));
            return 3;
        }
        free_list[(free_head + free_count++) % connections] = i;
    }
    double t0 = now() + START_DELAY_S;
    for (long i = 0; i < total; i++) due[i] += t0;
    double deadline = due[total - 1] + timeout_s + 1.0;
    long next = 0, head = 0, tail = 0, busy = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        while (next < total && due[next] <= t) {
            records[next].lag = t - due[next];
            waiting[tail++] = next++;
        }
        while (head < tail && free_count > 0) {
            int index = free_list[free_head];
            free_head = (free_head + 1) % connections;
            free_count--;
            start(&conns[index], index, waiting[head++]);
            if (conns[index].req >= 0) busy++;
            else free_list[(free_head + free_count++) % connections] = index;
        }
        if (next == total && head == tail && busy == 0) break;
        t = now();
        if (t > deadline) break;
        /* time out requests written too long ago */
        for (int i = 0; i < connections; i++) {
            conn_t *c = &conns[i];
            if (c->req >= 0 && t - c->sent > timeout_s) {
                drop(c); /* outcome stays 0: a timeout */
                busy--;
                free_list[(free_head + free_count++) % connections] = i;
            }
        }
        double wake = next < total ? due[next] : t + 0.001;
        if (head < tail) wake = t + 0.001; /* waiting for a free connection: check timeouts */
        double wait_s = wake - t;
        if (wait_s < 0) wait_s = 0;
        struct timespec ts = {.tv_sec = (time_t)wait_s,
                              .tv_nsec = (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        int n = epoll_pwait2(epoll_fd, events, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) { /* kernels before 5.11: millisecond timeouts */
            n = epoll_wait(epoll_fd, events, 256, wait_s > 0.001 ? (int)(wait_s * 1000) - 1 : 0);
        }
        for (int k = 0; k < n; k++) {
            int index = (int)events[k].data.u32;
            conn_t *c = &conns[index];
            if (c->fd < 0) continue;
            if ((events[k].events & EPOLLOUT) && c->req >= 0 && c->written < request_len) {
                push(c, index);
                if (c->fd < 0) {
                    busy--;
                    free_list[(free_head + free_count++) % connections] = index;
                    continue;
                }
            }
            if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                int was_busy = c->req >= 0;
                if (readable(c) && was_busy) {
                    busy--;
                    free_list[(free_head + free_count++) % connections] = index;
                }
            }
        }
    }
    double duration = (last_done >= 0 ? last_done : now()) - due[0];
    FILE *out = fopen(argv[7], "wb");
    if (!out || fwrite(&duration, sizeof duration, 1, out) != 1 ||
        fwrite(records, sizeof(record_t), (size_t)total, out) != (size_t)total || fclose(out) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", argv[7], strerror(errno));
        return 2;
    }
    return 0;
}

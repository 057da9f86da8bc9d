/* tcp-floor: the kernel's CPU floor for a WebSocket-like handshake over loopback TCP.
 *
 * Two processes (fork), each as lean as user space can be, so what they cost is almost all
 * kernel: TCP connect/accept, one ~230-byte request, one 129-byte "101" response plus a 60-byte
 * frame, and the connection then stays open (like an idle WebSocket). No HTTP parsing, no SHA-1.
 *   server (child):  epoll loop, accept4 until EAGAIN, TCP_NODELAY, read request up to
 *                    "\r\n\r\n", write 189 bytes in one write (or two with --two-writes).
 *   client (parent): N connections, at most K connecting/awaiting at once, non-blocking
 *                    connect from 127.0.0.2..30 (IP_BIND_ADDRESS_NO_PORT: no port shortage).
 * Each process reports its own getrusage() delta over its busy phase; the client also reads
 * /proc/stat so work charged to nobody in particular (ksoftirqd, irq) shows up too.
 *
 *   gcc -O2 -o /tmp/tcp-floor scripts/tcp-floor.c -lpthread
 *   /tmp/tcp-floor [--port 6599] [--count 15000] [--in-flight 256] [--two-writes]
 * Prints one "RESULT scenario=tcp-floor ..." line; exits non-zero on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define REQ_LEN 230
#define RESP_LEN 129 /* HTTP/1.1 101 with Upgrade, Connection, Sec-WebSocket-Accept */
#define FRAME_LEN 60 /* one unmasked text frame: 2-byte header + 58-byte payload */
#define TIMEOUT_MS 10000 /* no progress for this long = failure */

static char req[REQ_LEN + 1], out[RESP_LEN + FRAME_LEN];
static const char *resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
static pid_t child; /* server pid, in the client; killed if the client fails */
static const char *who = "client";

static void die(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt);
  fprintf(stderr, "tcp-floor %s: ", who); vfprintf(stderr, fmt, ap);
  if (errno) fprintf(stderr, " (%s)", strerror(errno));
  fputc('\n', stderr); va_end(ap);
  if (child > 0) kill(child, SIGKILL);
  exit(1);
}
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double tv_us(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }
/* CPU used so far by this process, microseconds: [0] user, [1] system. */
static void cpu_us(double c[2]) { struct rusage r; getrusage(RUSAGE_SELF, &r); c[0] = tv_us(r.ru_utime); c[1] = tv_us(r.ru_stime); }
/* Machine-wide jiffies from /proc/stat: busy (user+nice+system+irq+softirq+steal) and all. */
static void machine(unsigned long long *busy, unsigned long long *all) {
  unsigned long long v[8] = {0}; FILE *f = fopen("/proc/stat", "r");
  if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", v, v+1, v+2, v+3, v+4, v+5, v+6, v+7) != 8) die("reading /proc/stat");
  fclose(f);
  *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; *all = *busy + v[3] + v[4];
}
static void nodelay(int fd) { int one = 1; if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) die("TCP_NODELAY"); }
static void ep_add(int ep, int fd, unsigned ev) {
  struct epoll_event e = {.events = ev, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) die("epoll_ctl add fd %d", fd);
}

/* Server: serve `count` handshakes, send {user_us, sys_us} up `pipe_w`, then close all, exit. */
static void server(int lfd, int count, int two_writes, int pipe_w, int maxfd) {
  who = "server";
  unsigned char (*buf)[256] = calloc(maxfd, 256); /* per-fd request bytes so far */
  int *got = calloc(maxfd, sizeof *got), served = 0, ep = epoll_create1(0);
  if (!buf || !got || ep < 0) die("setup");
  ep_add(ep, lfd, EPOLLIN);
  double c0[2], c1[2]; cpu_us(c0);
  if (write(pipe_w, "R", 1) != 1) die("ready pipe"); /* the client may start now */
  struct epoll_event evs[512];
  while (served < count) {
    int n = epoll_wait(ep, evs, 512, TIMEOUT_MS);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("stalled after %d handshakes", served);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) { /* accept everything queued */
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) { if (errno == EAGAIN) { errno = 0; break; } die("accept4"); }
          if (c >= maxfd) die("fd %d too large", c);
          nodelay(c); got[c] = 0; ep_add(ep, c, EPOLLIN);
        }
        continue;
      }
      if (got[fd] < 0) continue; /* already answered; stays open, idle */
      ssize_t r = read(fd, buf[fd] + got[fd], 256 - got[fd]);
      if (r < 0 && errno == EAGAIN) { errno = 0; continue; }
      if (r <= 0) die("read request on fd %d (got %d bytes)", fd, got[fd]);
      got[fd] += r;
      if (got[fd] < 4 || memcmp(buf[fd] + got[fd] - 4, "\r\n\r\n", 4)) {
        if (got[fd] == 256) die("request too long");
        continue;
      }
      if (two_writes) {
        if (write(fd, out, RESP_LEN) != RESP_LEN || write(fd, out + RESP_LEN, FRAME_LEN) != FRAME_LEN) die("write");
      } else if (write(fd, out, sizeof out) != sizeof out) die("write");
      got[fd] = -1; served++;
    }
  }
  cpu_us(c1);
  double res[2] = {c1[0] - c0[0], c1[1] - c0[1]};
  if (write(pipe_w, res, sizeof res) != sizeof res) die("result pipe");
  for (int fd = 0; fd < maxfd; fd++) if (got[fd] == -1) close(fd);
  exit(0);
}

int main(int argc, char **argv) {
  int port = 6599, count = 15000, in_flight = 256, two_writes = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--two-writes")) two_writes = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--port")) port = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--count")) count = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--in-flight")) in_flight = atoi(argv[++i]);
    else { fprintf(stderr, "usage: %s [--port P] [--count N] [--in-flight K] [--two-writes]\n", argv[0]); return 2; }
  }
  if (count < 1 || in_flight < 1 || port < 1 || port > 65535) { fprintf(stderr, "bad arguments\n"); return 2; }

  /* Each process holds `count` sockets plus a few: raise the soft fd limit to the hard one. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl)) die("getrlimit");
  rl.rlim_cur = rl.rlim_max; if (setrlimit(RLIMIT_NOFILE, &rl)) die("setrlimit");
  int maxfd = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
  if (count + 16 > maxfd) { errno = 0; die("--count %d needs more fds than RLIMIT_NOFILE %d", count, maxfd); }

  /* The ~230-byte upgrade request (padded with a header to exactly REQ_LEN), response + frame. */
  int l = snprintf(req, sizeof req, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\nX-Pad: ", port);
  memset(req + l, 'p', REQ_LEN - 4 - l); memcpy(req + REQ_LEN - 4, "\r\n\r\n", 4);
  memcpy(out, resp, RESP_LEN);
  out[RESP_LEN] = (char)0x81; out[RESP_LEN + 1] = FRAME_LEN - 2; /* FIN + text, length 58 */
  memset(out + RESP_LEN + 2, 'm', FRAME_LEN - 2);

  /* Listen before fork so the client can never connect too early. */
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("listen socket");
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 4096)) die("bind/listen 127.0.0.1:%d", port);
  int p[2];
  if (pipe(p)) die("pipe");
  if ((child = fork()) < 0) die("fork");
  if (child == 0) { close(p[0]); server(lfd, count, two_writes, p[1], maxfd); }
  close(p[1]); close(lfd);
  char ready;
  if (read(p[0], &ready, 1) != 1) { errno = 0; die("server did not start"); }

  /* Client. state[fd]: 0 unused, 1 connecting, 2 awaiting response, 3 done (kept open). */
  int *rgot = calloc(maxfd, sizeof *rgot), ep = epoll_create1(0);
  char *state = calloc(maxfd, 1), rbuf[512];
  if (!rgot || !state || ep < 0) die("setup");
  int started = 0, done = 0, flying = 0;
  unsigned long long b0, a0, b1, a1; double c0[2], c1[2];
  machine(&b0, &a0); cpu_us(c0); double t0 = now_s();
  struct epoll_event evs[512];
  while (done < count) {
    for (; flying < in_flight && started < count; started++, flying++) { /* refill */
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0 || fd >= maxfd) die("socket (%d open)", started);
      struct sockaddr_in src = {.sin_family = AF_INET};
      src.sin_addr.s_addr = htonl(0x7f000002 + started % 29); /* 127.0.0.2 .. 127.0.0.30 */
      if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one)) die("IP_BIND_ADDRESS_NO_PORT");
      if (bind(fd, (struct sockaddr *)&src, sizeof src)) die("bind source");
      nodelay(fd);
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) die("connect #%d", started);
      errno = 0; state[fd] = 1; rgot[fd] = 0;
      ep_add(ep, fd, EPOLLOUT); /* fires once connected (or failed) */
    }
    int n = epoll_wait(ep, evs, 512, TIMEOUT_MS);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("stalled after %d handshakes", done);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd, err = 0; socklen_t el = sizeof err;
      if (state[fd] == 1) { /* connect completed: check it, send request, wait for reply */
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) { errno = err; die("connect completion"); }
        if (write(fd, req, REQ_LEN) != REQ_LEN) die("write request");
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e)) die("epoll_ctl mod");
        state[fd] = 2;
      } else if (state[fd] == 2) {
        ssize_t r = read(fd, rbuf, sizeof rbuf);
        if (r < 0 && errno == EAGAIN) { errno = 0; continue; }
        if (r <= 0) die("read response (got %d bytes)", rgot[fd]);
        if (rgot[fd] == 0 && memcmp(rbuf, "HTTP/1.1 101", r < 12 ? r : 12)) { errno = 0; die("unexpected response"); }
        rgot[fd] += r;
        if (rgot[fd] > RESP_LEN + FRAME_LEN) { errno = 0; die("response too long"); }
        if (rgot[fd] == RESP_LEN + FRAME_LEN) { state[fd] = 3; done++; flying--; }
      } /* state 3 (done, idle) never becomes readable until the server closes */
    }
  }
  double wall = now_s() - t0; cpu_us(c1); machine(&b1, &a1);

  double s[2];
  if (read(p[0], s, sizeof s) != sizeof s) { errno = 0; die("no result from server"); }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) { errno = 0; die("server failed"); }
  child = 0;
  for (int fd = 0; fd < maxfd; fd++) if (state[fd]) close(fd);

  double jus = 1e6 / sysconf(_SC_CLK_TCK);
  printf("RESULT scenario=tcp-floor count=%d in_flight=%d writes=%d wall_s=%.3f hs_per_s=%.0f "
         "server_user_us=%.2f server_sys_us=%.2f client_user_us=%.2f client_sys_us=%.2f "
         "total_us=%.2f machine_busy_us=%.2f machine_util=%.2f\n",
         count, in_flight, two_writes ? 2 : 1, wall, count / wall,
         s[0] / count, s[1] / count, (c1[0] - c0[0]) / count, (c1[1] - c0[1]) / count,
         (s[0] + s[1] + c1[0] - c0[0] + c1[1] - c0[1]) / count,
         (b1 - b0) * jus / count, (double)(b1 - b0) / (a1 - a0 ? a1 - a0 : 1));
  return 0;
}

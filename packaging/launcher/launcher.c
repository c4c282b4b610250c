/*
 * docker-credential-switchboard's front executable in the standalone build: answers a `get` from a
 * "fast record" the Python helper left behind, or hands the call to the Python helper unchanged.
 *
 * Why: Docker starts a credential helper once per registry on every pull, push and legacy build. The
 * frozen Python helper needs ~12 ms just to start its interpreter; a Go helper answers from its cache
 * in ~4 ms. This program answers the common case, a `get` whose token the helper already holds, in
 * about a millisecond, and execs the Python helper (`switchboard-core`, next to this executable) for
 * everything else: other actions, any doubt, any miss. It never decides anything the Python helper
 * has not decided before; the record format and the rules are in helper/fastpath.py.
 *
 * On a `get` (argv exactly `get`, not disabled by SWITCHBOARD_FASTPATH=0, no SWITCHBOARD_DEBUG and no
 * SWITCHBOARD_LOG, which must see every call; "", 0, false, no and off in any case turn a switch off), it:
 *  1. reads stdin to EOF (at most MAX_KEY bytes; more is never a registry, and goes to Python);
 *  2. hashes a fingerprint of everything the Python helper's answer can depend on, apart from files:
 *     the version, the effective uid, the stdin bytes, and the environment variables named in
 *     fingerprint_env() (values of secret-named ones are replaced by "<set>": a hash of a passphrase
 *     would be an offline guessing oracle);
 *  3. opens <cache dir>/fast/<fingerprint>; serves its answer only if the folder and the file are ours
 *     and private (no symlink, no FIFO, one link), the record names this fingerprint, is well-formed and
 *     not past its serve-until time, every file it depends on (the routes file, the token cache entry it
 *     copies, ...) has the same stat signature as when it was written, and its answer matches its
 *     length and checksum; and none of them (folder, record, files) is on a network or FUSE file system,
 *     whose stat() may answer from a cache that another machine's change has not reached (remote_kind()).
 * Otherwise it execs switchboard-core with the same argv, stdin replayed through a pipe, and
 * SWITCHBOARD_FAST_RECORD=<fingerprint> so that the Python helper may write the record.
 *
 * Errors are one line on stdout and exit 1, as the protocol wants; nothing goes to stderr.
 */
#define _GNU_SOURCE /* environ, O_CLOEXEC on old glibc */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#if defined(__linux__)
#include <sys/vfs.h> /* statfs, fstatfs */
#elif defined(__APPLE__)
#include <sys/param.h>
#include <sys/mount.h> /* statfs, fstatfs, f_fstypename */
#endif
#include <time.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif
#if defined(__linux__)
#include <sys/auxv.h>
#endif

#include "sha256.h"

#ifndef SWITCHBOARD_VERSION
#error "compile with -DSWITCHBOARD_VERSION=\"x.y.z\" (packaging/launcher/compile does)"
#endif

extern char **environ;

#define NAME "docker-credential-switchboard"
#define CORE "switchboard-core"
#define RECORD_VAR "SWITCHBOARD_FAST_RECORD"
#define RECORD_MAGIC "docker-credential-switchboard fast/1"
#define FINGERPRINT_MAGIC "docker-credential-switchboard fingerprint/1"
#define MAX_KEY 4096              /* a server URL; the pipe replay below relies on this fitting a pipe */
#define MAX_RECORD (64 * 1024)    /* a token answer is a few KB */
#define MAX_DEPS 16

/* ---- small helpers -------------------------------------------------------------------------- */

static void fail(const char *what, const char *detail)
{
    /* the protocol's error channel is stdout, one line */
    printf("%s: %s%s%s\n", NAME, what, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
    exit(1);
}

/* Whether a and b are equal ignoring ASCII case (not strcasecmp: no locale may widen what matches). */
static int same_ascii_word(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y - 'A' + 'a');
        }
        if (x != y) {
            return 0;
        }
        if (x == '\0') {
            return 1;
        }
    }
}

/* helper/log.py falsy(): a switch's value that turns it off, "", "0", "false", "no" or "off" in any case */
static int falsy(const char *value)
{
    return !*value || same_ascii_word(value, "0") || same_ascii_word(value, "false") ||
           same_ascii_word(value, "no") || same_ascii_word(value, "off");
}

/* Off when SWITCHBOARD_FASTPATH is set and falsy; and whenever the Python helper is asked to log every call:
 * SWITCHBOARD_DEBUG set and not falsy (helper/log.py debug_enabled), or SWITCHBOARD_LOG set and not empty. */
static int fast_path_wanted(void)
{
    const char *wanted = getenv("SWITCHBOARD_FASTPATH");
    const char *debug = getenv("SWITCHBOARD_DEBUG");
    const char *log = getenv("SWITCHBOARD_LOG");
    return !(wanted && falsy(wanted)) && !(debug && !falsy(debug)) && !(log && *log);
}

static int write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Reads fd 0 to EOF into buf (capacity cap). Returns the byte count, cap when there is more to read,
 * or -1 when stdin is not readable at all (closed: the Python helper copes with that itself). */
static ssize_t read_stdin(char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(0, buf + got, cap - got);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a non-blocking pipe: wait for it */
                struct pollfd ready = {0, POLLIN, 0};
                poll(&ready, 1, -1);
                continue;
            }
            return got > 0 ? (ssize_t)got : -1;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* ---- where things are ------------------------------------------------------------------------- */

/* The real path of this executable (symlinks resolved: /usr/bin/x -> /usr/lib/x/x). */
static int self_path(char *out, size_t size, const char *argv0)
{
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n > 0) {
        out[n] = '\0';
        return 0;
    }
    /* no /proc (a chroot, a minimal container): the path execve() was given, which the kernel keeps */
    const char *executed = (const char *)getauxval(AT_EXECFN);
    if (executed && realpath(executed, out)) {
        return 0;
    }
#elif defined(__APPLE__)
    char raw[PATH_MAX];
    uint32_t raw_size = sizeof raw;
    if (_NSGetExecutablePath(raw, &raw_size) == 0 && realpath(raw, out)) {
        return 0;
    }
#endif
    (void)size;
    /* never a search of PATH: the first match need not be the program running, and its core would not
     * be ours */
    return argv0 && strchr(argv0, '/') && realpath(argv0, out) ? 0 : -1;
}

/* The token cache folder, as helper/paths.py cache_dir() finds it; -1 when HOME is needed but unset. */
static int cache_dir(char *out, size_t size)
{
    const char *own = getenv("SWITCHBOARD_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (own && *own) {
        n = snprintf(out, size, "%s", own);
    } else if (xdg && *xdg) {
        n = snprintf(out, size, "%s/%s", xdg, NAME);
    } else if (home && *home) {
#if defined(__APPLE__)
        n = snprintf(out, size, "%s/Library/Caches/%s", home, NAME);
#else
        n = snprintf(out, size, "%s/.cache/%s", home, NAME);
#endif
    } else {
        return -1;
    }
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* ---- the fingerprint -------------------------------------------------------------------------- */

/* These tables, RECORD_VAR's exception and the "_FILE" rule are helper/envrules.py's, checked equal by
 * tests/test_env_rules.py: change both together. */
static const char *const ENV_PREFIXES[] = {
    "SWITCHBOARD_", "AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_", "AZURE_", "IDENTITY_", "IMDS_", "MSI_", NULL,
};
static const char *const ENV_NAMES[] = {"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_DIRS",
                                          "BOTO_CONFIG", NULL};
/* A variable whose name says it holds a secret counts by presence, never by value: a hash of a chosen
 * passphrase would be an offline guessing oracle. Paths (..._FILE) and key ids are not secrets, and
 * answers depend on their values (GOOGLE_APPLICATION_CREDENTIALS, AWS_ACCESS_KEY_ID). */
static const char *const SECRET_MARKS[] = {
    "SECRET", "PASSWORD", "PASSPHRASE", "TOKEN", "HEADER", "CONNECTION_STRING", NULL,
};
static const char *const SECRET_ENDINGS[] = {"_KEY", "_PAT", NULL};

static size_t name_length(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static int fingerprint_env(const char *entry)
{
    size_t len = name_length(entry);
    if (len == strlen(RECORD_VAR) && strncmp(entry, RECORD_VAR, len) == 0) {
        return 0; /* ours to set, never an input */
    }
    for (int i = 0; ENV_NAMES[i]; i++) {
        if (len == strlen(ENV_NAMES[i]) && strncmp(entry, ENV_NAMES[i], len) == 0) {
            return 1;
        }
    }
    for (int i = 0; ENV_PREFIXES[i]; i++) {
        if (strncmp(entry, ENV_PREFIXES[i], strlen(ENV_PREFIXES[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

static int ends_with(const char *name, size_t len, const char *ending)
{
    size_t n = strlen(ending);
    return len >= n && strncmp(name + len - n, ending, n) == 0;
}

static int secret_name(const char *entry, size_t len)
{
    if (ends_with(entry, len, "_FILE")) {
        return 0;
    }
    for (int i = 0; SECRET_ENDINGS[i]; i++) {
        if (ends_with(entry, len, SECRET_ENDINGS[i])) {
            return 1;
        }
    }
    for (int i = 0; SECRET_MARKS[i]; i++) {
        size_t mark = strlen(SECRET_MARKS[i]);
        for (size_t at = 0; at + mark <= len; at++) {
            if (strncmp(entry + at, SECRET_MARKS[i], mark) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* Orders environment entries by name, as bytes; a name that is a prefix of another comes first. */
static int by_name(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        unsigned cx = *x == '=' ? 0 : *x;
        unsigned cy = *y == '=' ? 0 : *y;
        if (cx != cy || cx == 0) {
            return (int)cx - (int)cy;
        }
    }
}

/* Writes the hex fingerprint; -1 when this call is not one to fingerprint (duplicate variables). */
static int fingerprint(const char *key, size_t key_size, char hex[65])
{
    size_t count = 0;
    for (char **env = environ; *env; env++) {
        count += fingerprint_env(*env) != 0;
    }
    const char **chosen = calloc(count + 1, sizeof *chosen);
    if (!chosen) {
        return -1;
    }
    size_t n = 0;
    for (char **env = environ; *env; env++) {
        if (fingerprint_env(*env)) {
            chosen[n++] = *env;
        }
    }
    qsort(chosen, n, sizeof *chosen, by_name);

    struct sha256 ctx;
    char number[64];
    sha256_init(&ctx);
    sha256_update(&ctx, FINGERPRINT_MAGIC, sizeof FINGERPRINT_MAGIC); /* with its NUL */
    sha256_update(&ctx, SWITCHBOARD_VERSION, sizeof SWITCHBOARD_VERSION);
    snprintf(number, sizeof number, "uid=%lu", (unsigned long)geteuid());
    sha256_update(&ctx, number, strlen(number) + 1);
    snprintf(number, sizeof number, "key=%zu", key_size);
    sha256_update(&ctx, number, strlen(number) + 1);
    sha256_update(&ctx, key, key_size);
    for (size_t i = 0; i < n; i++) {
        size_t len = name_length(chosen[i]);
        if (i > 0 && len == name_length(chosen[i - 1]) && strncmp(chosen[i], chosen[i - 1], len) == 0) {
            free(chosen);
            return -1; /* a name twice in the environment: which one wins is not ours to guess */
        }
        sha256_update(&ctx, "\0", 1);
        if (secret_name(chosen[i], len)) {
            sha256_update(&ctx, chosen[i], len);
            sha256_update(&ctx, "=<set>", 6);
        } else {
            sha256_update(&ctx, chosen[i], strlen(chosen[i]));
        }
    }
    free(chosen);
    sha256_hex(&ctx, hex);
    return 0;
}

/* ---- file systems whose stat() may be stale ------------------------------------------------------ */

/* Whether a file system of this kind may answer stat() from a client-side cache that a change made
 * elsewhere has not reached: NFS (attribute cache, acregmin 3 s to acdirmax 60 s, and cached negative
 * lookups), SMB/CIFS (actimeo, 1 s by default), FUSE (attr_timeout and entry_timeout, set by the server:
 * sshfs, gcsfuse, s3fs, rclone, GlusterFS, virtiofs of Docker Desktop and VMs), 9p (WSL2's Windows
 * drives, VM shares with cache=loose), host-shared folders (VirtualBox, Parallels, old VMware), and the
 * distributed and cluster file systems (AFS, Coda, Ceph, Lustre, GPFS, BeeGFS, OrangeFS, PanFS, StorNext,
 * IBRIX, ACFS, GFS2, OCFS2), whose coherence rests on mount options, leases or lock managers this program
 * cannot see. Python rereads such a file on every call, so a record that trusted the cached stat() could
 * serve the answer of routes (or a token entry) another machine has replaced. A deny list, not an allow list: local file systems (ext4,
 * xfs, btrfs, zfs, tmpfs, overlayfs of a container, ...) keep the fast path, and a refusal costs one
 * start of the Python helper, never a wrong answer. Known gap: an overlayfs whose lower layer is one of
 * these reports overlayfs. */
#if defined(__linux__)
static const unsigned long REMOTE_FS_MAGIC[] = {
    0x6969UL,     /* NFS_SUPER_MAGIC (v2, v3, v4) */
    0x517BUL,     /* SMB_SUPER_MAGIC (the old smbfs) */
    0xFF534D42UL, /* CIFS_SUPER_MAGIC */
    0xFE534D42UL, /* SMB2_SUPER_MAGIC */
    0x65735546UL, /* FUSE_SUPER_MAGIC: fuse, fuseblk, virtiofs */
    0x01021997UL, /* V9FS_MAGIC: 9p */
    0x564CUL,     /* NCP_SUPER_MAGIC (NetWare) */
    0x5346414FUL, /* AFS_SUPER_MAGIC (OpenAFS) */
    0x6B414653UL, /* AFS_FS_MAGIC (kAFS) */
    0x73757245UL, /* CODA_SUPER_MAGIC */
    0x00C36400UL, /* CEPH_SUPER_MAGIC */
    0x0BD00BD0UL, /* LUSTRE_SUPER_MAGIC */
    0x47504653UL, /* GPFS_SUPER_MAGIC (IBM Storage Scale) */
    0x19830326UL, /* BEEGFS_SUPER_MAGIC */
    0x20030528UL, /* ORANGEFS_SUPER_MAGIC (OrangeFS, PVFS2) */
    0xAAD7AAEAUL, /* PANFS_SUPER_MAGIC */
    0xBEEFDEADUL, /* SNFS_SUPER_MAGIC (StorNext) */
    0x013111A8UL, /* IBRIX_SUPER_MAGIC */
    0x61636673UL, /* ACFS_SUPER_MAGIC (Oracle ACFS) */
    0x01161970UL, /* GFS2_MAGIC */
    0x7461636FUL, /* OCFS2_SUPER_MAGIC */
    0x786F4256UL, /* VBOXSF_SUPER_MAGIC (VirtualBox shared folders) */
    0xBACBACBCUL, /* VMHGFS_SUPER_MAGIC (VMware's kernel module; its successor is FUSE) */
    0x7C7C6673UL, /* PRL_FS_MAGIC (Parallels shared folders) */
};

static int remote_kind(const struct statfs *fs)
{
    /* f_type is a signed word on most ABIs: compare its low 32 bits, where the kernel puts the magic */
    unsigned long type = (unsigned long)fs->f_type & 0xFFFFFFFFUL;
    for (size_t i = 0; i < sizeof REMOTE_FS_MAGIC / sizeof REMOTE_FS_MAGIC[0]; i++) {
        if (type == REMOTE_FS_MAGIC[i]) {
            return 1;
        }
    }
    return 0;
}
#elif defined(__APPLE__)
/* f_fstypename: exact names, and prefixes for the FUSE families (macfuse, osxfuse, fusefs, fuse-t) */
static const char *const REMOTE_FS_NAMES[] = {"nfs", "smbfs", "afpfs", "webdav", "ftp", NULL};
static const char *const REMOTE_FS_PREFIXES[] = {"fuse", "macfuse", "osxfuse", NULL};

static int remote_kind(const struct statfs *fs)
{
    for (int i = 0; REMOTE_FS_NAMES[i]; i++) {
        if (strcmp(fs->f_fstypename, REMOTE_FS_NAMES[i]) == 0) {
            return 1;
        }
    }
    for (int i = 0; REMOTE_FS_PREFIXES[i]; i++) {
        if (strncmp(fs->f_fstypename, REMOTE_FS_PREFIXES[i], strlen(REMOTE_FS_PREFIXES[i])) == 0) {
            return 1;
        }
    }
    return 0;
}
#endif

/* Whether the open file fd is on such a file system; 1 too when that cannot be known. */
static int remote_fd(int fd)
{
#if defined(__linux__) || defined(__APPLE__)
    struct statfs fs;
    return fstatfs(fd, &fs) != 0 || remote_kind(&fs);
#else
    (void)fd;
    return 1; /* no way to tell here: every record goes to Python */
#endif
}

/* Whether path is on such a file system; 1 too when that cannot be known. A path that does not exist
 * is judged by its nearest existing folder: that is where another machine would create it, unseen
 * behind a cached negative lookup. */
static int remote_path(const char *path)
{
#if defined(__linux__) || defined(__APPLE__)
    char at[PATH_MAX];
    struct statfs fs;
    if (snprintf(at, sizeof at, "%s", path) >= (int)sizeof at) {
        return 1;
    }
    while (statfs(at, &fs) != 0) {
        char *slash = strrchr(at, '/');
        if (errno != ENOENT && errno != ENOTDIR) {
            return 1;
        }
        if (!slash) {
            if (strcmp(at, ".") == 0) {
                return 1;
            }
            snprintf(at, sizeof at, "."); /* a relative name: the working folder */
        } else if (slash == at) {
            if (at[1] == '\0') {
                return 1; /* "/" itself is not there: nothing to judge */
            }
            at[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    return remote_kind(&fs);
#else
    (void)path;
    return 1;
#endif
}

/* ---- the record ------------------------------------------------------------------------------- */

/* A file's stat signature as helper/fastpath.py writes it: dev:ino:size:mtime_ns:ctime_ns, "-" when
 * it does not exist. Returns -1 when it cannot be known (permission denied, ...). */
static int signature(const char *path, char *out, size_t size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(out, size, "-");
            return 0;
        }
        return -1;
    }
#if defined(__APPLE__)
    long long mtime = (long long)st.st_mtimespec.tv_sec * 1000000000LL + st.st_mtimespec.tv_nsec;
    long long ctime = (long long)st.st_ctimespec.tv_sec * 1000000000LL + st.st_ctimespec.tv_nsec;
#else
    long long mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    long long ctime = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
#endif
    snprintf(out, size, "%llu:%llu:%lld:%lld:%lld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size, mtime, ctime);
    return 0;
}

/* The next line of [*at, end) without its newline, NUL-terminated in place; NULL at the end. */
static char *next_line(char **at, char *end)
{
    char *start = *at;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    if (!nl) {
        return NULL;
    }
    *nl = '\0';
    *at = nl + 1;
    return start;
}

static int parse_number(const char *text, long long *value)
{
    char *stop;
    if (!text || !*text) {
        return -1;
    }
    errno = 0;
    *value = strtoll(text, &stop, 10);
    return errno == 0 && *stop == '\0' ? 0 : -1;
}

/* Whether fd is ours and private: our uid, and no write (record: no access) for anybody else. */
static int private_to_us(int fd, mode_t others)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & others) == 0;
}

/* Serves the record `name` of the folder `folder` and exits 0, or returns when it does not apply. */
static void serve(const char *folder, const char *name)
{
    static char data[MAX_RECORD + 1];
    int dir = open(folder, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY);
    if (dir < 0) {
        return;
    }
    if (!private_to_us(dir, 022) || remote_fd(dir)) {
        close(dir);
        return;
    }
    /* O_NONBLOCK: a FIFO planted under the name must not hang us before the S_ISREG check */
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    close(dir);
    if (fd < 0) {
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || !private_to_us(fd, 077) ||
        st.st_size > MAX_RECORD || remote_fd(fd)) {
        close(fd);
        return;
    }
    size_t size = 0;
    for (;;) {
        ssize_t n = read(fd, data + size, MAX_RECORD + 1 - size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        size += (size_t)n;
        if (size > MAX_RECORD) {
            close(fd);
            return;
        }
    }
    close(fd);

    char *at = data, *end = data + size;
    long long until, length, deps;
    char *magic = next_line(&at, end);
    char *owner = next_line(&at, end); /* the fingerprint it was written for: a copy under another name fails */
    if (!magic || strcmp(magic, RECORD_MAGIC) != 0 || !owner || strcmp(owner, name) != 0 ||
        parse_number(next_line(&at, end), &until) != 0 ||
        (long long)time(NULL) >= until || parse_number(next_line(&at, end), &length) != 0) {
        return;
    }
    char *digest = next_line(&at, end);
    if (!digest || strlen(digest) != 64 || parse_number(next_line(&at, end), &deps) != 0 || deps < 0 ||
        deps > MAX_DEPS) {
        return;
    }
    for (long long i = 0; i < deps; i++) {
        char *dep = next_line(&at, end);
        char *want = next_line(&at, end);
        char have[128];
        if (!dep || !want || remote_path(dep) || signature(dep, have, sizeof have) != 0 || strcmp(have, want) != 0) {
            return;
        }
    }
    if (length <= 0 || length != (long long)(end - at)) {
        return; /* a torn or padded file */
    }
    struct sha256 ctx;
    char check[65];
    sha256_init(&ctx);
    sha256_update(&ctx, at, (size_t)length);
    sha256_hex(&ctx, check);
    if (strcmp(check, digest) != 0) {
        return;
    }
    signal(SIGPIPE, SIG_IGN); /* a reader that went away is an exit 1, as in the Python helper */
    exit(write_all(1, at, (size_t)length) == 0 ? 0 : 1);
}

/* ---- handing over to the Python helper ------------------------------------------------------- */

/* A pipe whose ends are above 0, 1 and 2, even when the caller closed some of those. */
static void pipe_above_stdio(int fds[2])
{
    if (pipe(fds) != 0) {
        fail("cannot create a pipe", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] <= 2) {
            int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (moved < 0) {
                fail("cannot create a pipe", strerror(errno));
            }
            close(fds[i]);
            fds[i] = moved;
        }
    }
}

/* The feeder: the rest of stdin into the pipe, until EOF, or SIGPIPE when the helper stops reading. */
static void feed(int out, const char *consumed, size_t size)
{
    /* It must not hold the caller's stdout/stderr open: Docker reads them to EOF. */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
    } else {
        close(1);
        close(2);
    }
    if (write_all(out, consumed, size) != 0) {
        _exit(0);
    }
    char chunk[65536];
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n > 0) {
            if (write_all(out, chunk, (size_t)n) != 0) {
                break;
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd ready = {0, POLLIN, 0};
            poll(&ready, 1, -1);
        } else {
            break;
        }
    }
    _exit(0);
}

/* Makes fd 0 a pipe that replays `consumed` and then whatever stdin still holds. */
static void replay_stdin(const char *consumed, size_t size, int more)
{
    int fds[2];
    pipe_above_stdio(fds);
    if (!more) {
        /* at most MAX_KEY bytes: they fit an empty pipe's buffer (>= 4 KiB everywhere), so no block */
        if (write_all(fds[1], consumed, size) != 0) {
            fail("cannot replay stdin", strerror(errno));
        }
    } else {
        pid_t feeder = fork();
        if (feeder < 0) {
            fail("cannot replay stdin", strerror(errno));
        }
        if (feeder == 0) {
            close(fds[0]);
            feed(fds[1], consumed, size);
        }
    }
    close(fds[1]);
    if (dup2(fds[0], 0) < 0) {
        fail("cannot replay stdin", strerror(errno));
    }
    close(fds[0]);
}

static void run_core(const char *core, char **argv)
{
    argv[0] = (char *)core;
    execv(core, argv);
    fail("cannot start the helper", strerror(errno));
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], core[PATH_MAX];
    if (self_path(self, sizeof self, argv[0]) != 0) {
        fail("cannot find its own executable", NULL);
    }
    char *slash = strrchr(self, '/');
    if (!slash) {
        fail("cannot find its own executable", self);
    }
    *slash = '\0';
    if (snprintf(core, sizeof core, "%s/%s", self, CORE) >= (int)sizeof core) {
        fail("path too long", self);
    }
    unsetenv(RECORD_VAR); /* only this program sets it, and only for the one call it fingerprinted */
    char *no_arguments[] = {core, NULL};
    if (argc < 1) {
        argv = no_arguments; /* started with an empty argv: give the helper a program name at least */
    }

    if (argc != 2 || strcmp(argv[1], "get") != 0 || !fast_path_wanted()) {
        run_core(core, argv);
    }

    static char key[MAX_KEY + 1];
    ssize_t size = read_stdin(key, sizeof key);
    if (size < 0) {
        run_core(core, argv); /* no stdin at all: nothing consumed, nothing to replay */
    }
    int more = size > MAX_KEY;
    char hex[65], dir[PATH_MAX], folder[PATH_MAX];
    if (!more && fingerprint(key, (size_t)size, hex) == 0 && cache_dir(dir, sizeof dir) == 0 &&
        snprintf(folder, sizeof folder, "%s/fast", dir) < (int)sizeof folder) {
        serve(folder, hex);
        setenv(RECORD_VAR, hex, 1);
    }
    replay_stdin(key, (size_t)size, more);
    run_core(core, argv);
    return 1;
}

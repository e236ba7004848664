/* Simulated NOR flash: see nor_flash.h. */
#include "nor_flash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t rng_next(pf_nor *n)
{
    /* xorshift32: deterministic from the seed, so a cut replays exactly */
    uint32_t x = n->rng ? n->rng : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    n->rng = x;
    return x;
}

static int refuse(pf_nor *n, int err, const char *what, uint32_t off, uint32_t len)
{
    snprintf(n->error, sizeof n->error, "%s (offset 0x%lx, %lu bytes)", what, (unsigned long)off, (unsigned long)len);
    return err;
}

static int check_range(pf_nor *n, uint32_t off, uint32_t len, uint32_t align, const char *op)
{
    char what[64];
    if ((uint64_t)off + len > n->flash.size) {
        snprintf(what, sizeof what, "%s beyond the end of flash", op);
        return refuse(n, PF_ERR_RANGE, what, off, len);
    }
    if (off % align || len % align) {
        snprintf(what, sizeof what, "%s not aligned to %lu bytes", op, (unsigned long)align);
        return refuse(n, PF_ERR_ARG, what, off, len);
    }
    return PF_OK;
}

/* Counts an operation; returns 1 if it is the one that loses power. */
static int op_cut(pf_nor *n)
{
    n->ops++;
    if (n->cut_at && n->ops == n->cut_at) {
        n->powered = 0;
        n->cut_at = 0;
        return 1;
    }
    return 0;
}

static int nor_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    pf_nor *n = ctx;
    if (!n->powered)
        return refuse(n, PF_ERR_IO, "read without power", off, len);
    int r = check_range(n, off, len, n->flash.read_size, "read");
    if (r < 0)
        return r;
    n->reads++;
    memcpy(buf, n->mem + off, len);
    return PF_OK;
}

static int nor_prog(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    pf_nor *n = ctx;
    const uint8_t *src = buf;
    if (!n->powered)
        return refuse(n, PF_ERR_IO, "program without power", off, len);
    int r = check_range(n, off, len, n->flash.prog_size, "program");
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < len; i++)
        if (n->mem[off + i] != n->flash.erase_value)
            return refuse(n, PF_ERR_STATE, "program over unerased flash", off + i, len - i);
    if (op_cut(n)) {
        if (n->half) {
            uint32_t done = rng_next(n) % (len + 1);
            memcpy(n->mem + off, src, done);
            if (done < len) { /* one byte caught mid-way: some of its bits moved */
                uint8_t ev = n->flash.erase_value, target = src[done];
                uint8_t flip = (uint8_t)((ev ^ target) & rng_next(n));
                n->mem[off + done] = (uint8_t)(ev ^ flip);
            }
        }
        return refuse(n, PF_ERR_IO, "power cut during program", off, len);
    }
    n->progs++;
    memcpy(n->mem + off, src, len);
    return PF_OK;
}

static int nor_erase(void *ctx, uint32_t off)
{
    pf_nor *n = ctx;
    uint32_t es = n->flash.erase_size;
    if (!n->powered)
        return refuse(n, PF_ERR_IO, "erase without power", off, es);
    int r = check_range(n, off, es, es, "erase");
    if (r < 0)
        return r;
    if (op_cut(n)) {
        if (n->half) {
            uint32_t done = rng_next(n) % (es + 1);
            memset(n->mem + off, n->flash.erase_value, done);
        }
        return refuse(n, PF_ERR_IO, "power cut during erase", off, es);
    }
    n->erases++;
    memset(n->mem + off, n->flash.erase_value, es);
    return PF_OK;
}

static int nor_sync(void *ctx)
{
    pf_nor *n = ctx;
    if (!n->powered)
        return PF_ERR_IO;
    if (n->fd >= 0 && msync(n->mem, n->flash.size, MS_SYNC) != 0)
        return PF_ERR_IO;
    return PF_OK;
}

int pf_nor_init(pf_nor *n, uint32_t size, uint32_t read_size, uint32_t prog_size, uint32_t erase_size,
                uint8_t erase_value, const char *path)
{
    memset(n, 0, sizeof *n);
    n->fd = -1;
    if (!read_size || !prog_size || !erase_size || erase_size % prog_size || erase_size % read_size ||
        !size || size % erase_size)
        return PF_ERR_ARG;
    if (path) {
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0)
            return PF_ERR_IO;
        struct stat st;
        int fresh = fstat(fd, &st) != 0 || st.st_size != (off_t)size;
        if (fresh && ftruncate(fd, (off_t)size) != 0) {
            close(fd);
            return PF_ERR_IO;
        }
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return PF_ERR_IO;
        }
        n->mem = m;
        n->fd = fd;
        if (fresh)
            memset(n->mem, erase_value, size);
    } else {
        n->mem = malloc(size);
        if (!n->mem)
            return PF_ERR_NOMEM;
        memset(n->mem, erase_value, size);
    }
    n->flash.ctx = n;
    n->flash.read = nor_read;
    n->flash.prog = nor_prog;
    n->flash.erase = nor_erase;
    n->flash.sync = nor_sync;
    n->flash.read_size = read_size;
    n->flash.prog_size = prog_size;
    n->flash.erase_size = erase_size;
    n->flash.size = size;
    n->flash.erase_value = erase_value;
    n->powered = 1;
    n->half = 1;
    return PF_OK;
}

void pf_nor_free(pf_nor *n)
{
    if (!n->mem)
        return;
    if (n->fd >= 0) {
        msync(n->mem, n->flash.size, MS_SYNC);
        munmap(n->mem, n->flash.size);
        close(n->fd);
    } else {
        free(n->mem);
    }
    n->mem = NULL;
    n->fd = -1;
}

void pf_nor_cut_after(pf_nor *n, uint64_t op, uint32_t seed)
{
    n->cut_at = op ? n->ops + op : 0;
    n->rng = seed * 2654435761u + 1;
}

void pf_nor_reboot(pf_nor *n)
{
    n->powered = 1;
    n->cut_at = 0;
}

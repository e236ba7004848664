/* The board services every semihosted board takes from the host the same
 * way: files as the SD card, the console, the job line (-append) and the
 * reference clock. A board keeps only its own link and clock. */
#include "semihost.h"

#include "pf_board.h"

typedef struct sh_file {
    int handle;
} sh_file;

static sh_file file0 = { -1 };

static int sd_open(void *ctx, const char *path, pf_diag *diag)
{
    sh_file *f = ctx;
    f->handle = pf_sh_open_read(path);
    if (f->handle < 0)
        return pf_diag_set(diag, PF_ERR_IO, "%s: cannot open (host errno %d)", path, pf_sh_errno());
    return PF_OK;
}

static int sd_read(void *ctx, uint8_t *buf, size_t n)
{
    sh_file *f = ctx;
    int r = pf_sh_read(f->handle, buf, n);
    return r < 0 ? PF_ERR_IO : r;
}

static long sd_size(void *ctx)
{
    sh_file *f = ctx;
    long n = pf_sh_flen(f->handle);
    return n < 0 ? PF_ERR_IO : n;
}

static void sd_close(void *ctx)
{
    sh_file *f = ctx;
    if (f->handle >= 0)
        pf_sh_close(f->handle);
    f->handle = -1;
}

static const pf_storage sd_storage = { &file0, sd_open, sd_read, sd_size, sd_close };

static void console(const char *line)
{
    pf_sh_write0(line);
    pf_sh_write0("\n");
}

static int job(char *buf, size_t size)
{
    int n = pf_sh_cmdline(buf, size);
    return n < 0 ? PF_ERR_IO : n;
}

void pf_sh_board_services(pf_board *b)
{
    b->storage = &sd_storage;
    b->console = console;
    b->job = job;
    b->reference_ms = pf_sh_elapsed_ms;
}

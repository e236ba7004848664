/* The simulated device: bootloader + agent over simulated NOR flash. At
 * every (simulated) reset the bootloader runs first (finishing or undoing a
 * swap, rolling back an unconfirmed trial), then the agent serves the link.
 * Flash program and erase take simulated time (real sleeps), during which the
 * link keeps buffering bytes as a UART DMA ring would. */
#include "agent_sim.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nor_flash.h"
#include "sim_command.h"
#include "peerflash/pf_agent.h"
#include "peerflash/pf_boot.h"
#include "peerflash/pf_bytes.h"
#include "peerflash/pf_posix.h"
#include "peerflash/pf_sign.h"

#define SIM_E 4096u


/* The UART's receive ring while the CPU is busy programming or erasing
 * flash: what arrives beyond its capacity is lost, as on a device whose
 * DMA ring overflows. Bytes taken from the link during a busy period wait
 * here and are handed to the agent first. */
static struct {
    int fd;            /* the link's descriptor, -1 = not modelled */
    uint32_t cap;
    uint8_t buf[65536];
    size_t len, pos;
    uint64_t lost;
} ring = {-1, 0, {0}, 0, 0, 0};

static void ring_busy_end(void)
{
    int avail = 0;
    if (ring.fd < 0 || ring.cap == 0 || ioctl(ring.fd, FIONREAD, &avail) != 0 || avail <= 0)
        return;
    if (ring.pos) { /* keep the unread bytes at the front */
        memmove(ring.buf, ring.buf + ring.pos, ring.len - ring.pos);
        ring.len -= ring.pos;
        ring.pos = 0;
    }
    size_t held = ring.len - ring.pos, room = held < ring.cap ? ring.cap - held : 0;
    if (room > sizeof ring.buf - ring.len)
        room = sizeof ring.buf - ring.len;
    uint8_t drop[4096];
    size_t want = (size_t)avail;
    while (want) {
        size_t take = want < room ? want : room;
        ssize_t r;
        if (take) {
            r = read(ring.fd, ring.buf + ring.len, take);
            if (r <= 0)
                return;
            ring.len += (size_t)r;
            room -= (size_t)r;
        } else {
            r = read(ring.fd, drop, want < sizeof drop ? want : sizeof drop);
            if (r <= 0)
                return;
            ring.lost += (uint64_t)r;
        }
        want -= (size_t)r;
    }
}

typedef struct timed_flash {
    pf_flash flash; /* what the agent sees */
    pf_nor nor;
    uint32_t prog_us_per_kib, erase_ms;
    uint64_t debt_us; /* accumulated program time not slept yet */
} timed_flash;

static int t_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    timed_flash *t = ctx;
    return t->nor.flash.read(&t->nor, off, buf, len);
}

static int t_prog(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    timed_flash *t = ctx;
    int r = t->nor.flash.prog(&t->nor, off, buf, len);
    t->debt_us += (uint64_t)len * t->prog_us_per_kib / 1024u;
    if (t->debt_us >= 1000) { /* sleep in whole milliseconds */
        usleep((useconds_t)t->debt_us);
        t->debt_us = 0;
        ring_busy_end();
    }
    return r;
}

static int t_erase(void *ctx, uint32_t off)
{
    timed_flash *t = ctx;
    int r = t->nor.flash.erase(&t->nor, off);
    if (t->erase_ms) {
        usleep(t->erase_ms * 1000u);
        ring_busy_end();
    }
    return r;
}

static int t_sync(void *ctx)
{
    timed_flash *t = ctx;
    return t->nor.flash.sync(&t->nor);
}

typedef struct sim_log {
    FILE *f;
} sim_log;

static void log_line(void *ctx, int level, const char *msg)
{
    (void)level;
    sim_log *l = ctx;
    fprintf(l->f, "%s\n", msg);
    fflush(l->f);
}

/* The device's UART: silent while the power is off. */
static timed_flash *g_flash;
static const pf_port *g_link;
static int sim_read(void *ctx, uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    if (ring.pos < ring.len) {
        size_t k = ring.len - ring.pos < n ? ring.len - ring.pos : n;
        memcpy(buf, ring.buf + ring.pos, k);
        ring.pos += k;
        return (int)k;
    }
    return g_link->read(ctx, buf, n, timeout_ms);
}

static int sim_write(void *ctx, const uint8_t *buf, size_t n)
{
    if (!g_flash->nor.powered)
        return (int)n; /* a dead device sends nothing */
    return g_link->write(ctx, buf, n);
}

/* Arms the next cut of the list (absolute operation numbers). */
static void arm_cut(timed_flash *t, const char **cuts)
{
    while (*cuts && **cuts) {
        char *end;
        unsigned long op = strtoul(*cuts, &end, 0);
        *cuts = *end == ',' ? end + 1 : end;
        if (op > t->nor.ops) {
            pf_nor_cut_after(&t->nor, op - t->nor.ops, (uint32_t)op);
            return;
        }
    }
}

static int power_cut(timed_flash *t, FILE *log, const char **cuts)
{
    if (t->nor.powered)
        return 0;
    fprintf(log, "power cut at flash operation %lu: rebooting\n", (unsigned long)t->nor.ops);
    fflush(log);
    pf_nor_reboot(&t->nor);
    arm_cut(t, cuts);
    return 1;
}

/* Log callback on a port: the port's own ctx is needed for I/O, so the sim
 * keeps a copy of the table with log redirected. */
static FILE *g_log;
static void port_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    sim_log l = {g_log};
    log_line(&l, level, msg);
}

static int load_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return PF_ERR_IO;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n + 1 : 1);
    *len = n > 0 && fread(*data, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    (*data)[*len] = 0;
    fclose(f);
    return PF_OK;
}

struct pf_sim_agent {
    pf_sim_agent_config cfg;
    FILE *log;
    uint32_t slot;
    timed_flash tf;
    uint8_t pub[128];
    int pub_len;
    pf_posix_link link;
    pf_port port, raw;
    const char *cuts;
    unsigned payload;
};

int pf_sim_agent_open(pf_sim_agent **out, const pf_sim_agent_config *o, pf_diag *diag)
{
    if (!out || !o || !o->port)
        return pf_diag_set(diag, PF_ERR_ARG, "sim agent: no port given");
    *out = NULL;
    uint32_t slot = o->slot_size ? o->slot_size : 256u * 1024u;
    if (slot % SIM_E)
        return pf_diag_set(diag, PF_ERR_ARG, "sim agent: slot size must be a multiple of 4 KiB");
    pf_sim_agent *sim = calloc(1, sizeof *sim);
    if (!sim)
        return pf_diag_set(diag, PF_ERR_NOMEM, "sim agent: out of memory");
    sim->cfg = *o;
    sim->log = o->log ? o->log : stderr;
    sim->slot = slot;
    g_log = sim->log;
    uint32_t total = 2 * slot + 3 * SIM_E;
    timed_flash *t = &sim->tf;
    int r = pf_nor_init(&t->nor, total, 1, 8, SIM_E, 0xFF, o->flash_path);
    if (r < 0) {
        free(sim);
        return pf_diag_set(diag, r, "sim agent: cannot open flash file %s", o->flash_path ? o->flash_path : "(memory)");
    }
    t->prog_us_per_kib = o->prog_us_per_kib;
    t->erase_ms = o->erase_ms;
    t->flash = t->nor.flash;
    t->flash.ctx = t;
    t->flash.read = t_read;
    t->flash.prog = t_prog;
    t->flash.erase = t_erase;
    t->flash.sync = t_sync;

    if (o->key_path) {
        uint8_t *pem;
        size_t n;
        pf_diag kd = {0};
        if (load_file(o->key_path, &pem, &n) < 0 ||
            (sim->pub_len = pf_sign_pubkey_der((char *)pem, sim->pub, sizeof sim->pub, &kd)) < 0) {
            pf_sim_agent_close(sim);
            return pf_diag_set(diag, PF_ERR_FORMAT, "sim agent: key %s: %s", o->key_path, kd.text);
        }
        free(pem);
    }
    if (o->factory) {
        uint8_t *img;
        size_t n;
        if (load_file(o->factory, &img, &n) < 0 || n > slot) {
            pf_sim_agent_close(sim);
            return pf_diag_set(diag, PF_ERR_IO, "sim agent: factory image %s unreadable or too big", o->factory);
        }
        if (pf_get_le32(t->nor.mem) != PF_MCUBOOT_MAGIC) {
            memset(t->nor.mem, 0xFF, slot + SIM_E);
            memcpy(t->nor.mem, img, n);
        }
        free(img);
    }

    sim->link.fd = sim->link.listen_fd = -1;
    r = pf_posix_open(&sim->link, o->port, diag);
    if (r < 0) {
        pf_sim_agent_close(sim);
        return r;
    }
    pf_posix_port(&sim->link, &sim->raw);
    sim->port = sim->raw;
    sim->port.log = port_log;
    sim->port.write = sim_write;
    sim->port.read = sim_read;
    ring.fd = sim->link.fd;
    ring.cap = o->rx_ring;
    ring.len = ring.pos = 0;
    ring.lost = 0;
    g_flash = t;
    g_link = &sim->raw;
    sim->cuts = o->power_cuts;
    arm_cut(t, &sim->cuts);
    sim->payload = o->payload ? o->payload : 1024;
    if (sim->payload > PF_AP_MAX_PAYLOAD - 4)
        sim->payload = PF_AP_MAX_PAYLOAD - 4;
    *out = sim;
    return PF_OK;
}

void pf_sim_agent_close(pf_sim_agent *sim)
{
    if (!sim)
        return;
    if (g_flash == &sim->tf) {
        g_flash = NULL;
        g_link = NULL;
        ring.fd = -1;
    }
    if (sim->link.fd >= 0 || sim->link.listen_fd >= 0)
        pf_posix_close(&sim->link);
    pf_nor_free(&sim->tf.nor);
    free(sim);
}

int pf_sim_agent_run(pf_sim_agent *sim, volatile sig_atomic_t *stop)
{
    const pf_sim_agent_config *o = &sim->cfg;
    FILE *log = sim->log;
    timed_flash *t = &sim->tf;
    uint32_t slot = sim->slot;
    pf_diag diag;
    memset(&diag, 0, sizeof diag);
    int r;
    static uint8_t bbuf[1024], wbuf[1024], rxbuf[PF_AP_MAX_PAYLOAD + PF_AP_OVERHEAD], txbuf[512];
    static uint8_t zarena[PF_AGENT_ZARENA_SIZE(15)];
    fprintf(log, "sim agent: flash %s (%lu KiB slots), link %s\n", o->flash_path ? o->flash_path : "(memory)",
            (unsigned long)(slot / 1024), o->port);
    unsigned boots = 0;
    while (!(stop && *stop)) {
        /* reset: the bootloader */
        pf_boot boot;
        pf_boot_config bc = PF_BOOT_CONFIG_DEFAULT();
        bc.flash = &t->flash;
        bc.primary_off = 0;
        bc.secondary_off = slot + SIM_E;
        bc.slot_size = slot;
        bc.state_off = 2 * slot + SIM_E;
        if (sim->pub_len > 0) {
            bc.pubkey = sim->pub;
            bc.pubkey_len = (size_t)sim->pub_len;
            bc.sig_verify = pf_ecdsa_p256_verify;
        }
        bc.buf = bbuf;
        bc.buf_size = sizeof bbuf;
        bc.diag = &diag;
        r = pf_boot_open(&boot, &bc);
        if (power_cut(t, log, &sim->cuts))
            continue;
        if (r < 0) {
            fprintf(log, "boot: %s\n", diag.text);
            break;
        }
        pf_boot_result res;
        r = pf_boot_run(&boot, &res);
        boots++;
        if (power_cut(t, log, &sim->cuts))
            continue;
        if (r < 0)
            fprintf(log, "boot %u: no bootable image (%s): staying in the agent for recovery\n", boots, diag.text);
        else
            fprintf(log, "boot %u: image %u.%u.%u%s%s%s, state %s\n", boots, (unsigned)res.image.version.major,
                    (unsigned)res.image.version.minor, (unsigned)res.image.version.revision,
                    res.trial ? " on trial" : "", res.swapped && !res.reverted ? " (swapped in)" : "",
                    res.reverted ? " (rolled back)" : "", pf_boot_state_name(boot.rec.state));
        fflush(log);

        /* the application: the agent */
        pf_agent agent;
        pf_agent_config ac = PF_AGENT_CONFIG_DEFAULT();
        ac.boot = &boot;
        ac.port = &sim->port;
        ac.wbuf = wbuf;
        ac.wbuf_size = sizeof wbuf;
        ac.rxbuf = rxbuf;
        ac.rxbuf_size = sim->payload + 4 + PF_AP_OVERHEAD;
        ac.txbuf = txbuf;
        ac.txbuf_size = sizeof txbuf;
        ac.window = (uint16_t)(o->window ? o->window : 8);
        ac.allow_downgrade = o->allow_downgrade;
        ac.device_id = 0x50460001u;
        ac.zbits = (uint8_t)o->deflate_bits;
        ac.zarena = zarena;
        ac.zarena_size = sizeof zarena;
        ac.diag = &diag;
        if ((r = pf_agent_init(&agent, &ac)) < 0) {
            fprintf(log, "agent: %s\n", diag.text);
            break;
        }
        /* a reset loses whatever the UART had received */
        if (sim->raw.flush_input)
            sim->raw.flush_input(sim->raw.ctx);
        ring.len = ring.pos = 0;
        if (ring.lost)
            fprintf(log, "uart: %lu bytes lost so far (receive ring of %lu bytes overflowed during flash work)\n",
                    (unsigned long)ring.lost, (unsigned long)ring.cap);
        pf_agent_announce(&agent);
        int reboot = 0;
        while (!reboot && !(stop && *stop)) {
            r = pf_agent_poll(&agent, 50, &reboot);
            if (power_cut(t, log, &sim->cuts))
                break;
            if (r == PF_ERR_CLOSED) {
                pf_posix_sleep_ms(20); /* peer gone: wait for the next one */
                continue;
            }
            if (r < 0) {
                fprintf(log, "agent: %s\n", pf_strerror(r));
                pf_posix_sleep_ms(20);
            }
        }
        if (reboot) {
            fprintf(log, "reset requested\n");
            pf_posix_sleep_ms(20); /* the reset itself */
        }
    }
    return PF_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: peerflash sim agent --port PATH [--flash FILE] [--slot-kib N] [--key PEM]\n"
               "                           [--factory IMAGE] [--prog-us-per-kib N] [--erase-ms N]\n"
               "                           [--window N] [--payload N] [--allow-downgrade] [--log FILE]\n"
               "                           [--power-cut N[,N...]] [--rx-ring BYTES] [--deflate-bits N]\n"
               "  the peerflash agent and bootloader over simulated NOR flash (4 KiB sectors,\n"
               "  8-byte program granule; program/erase take simulated time). The flash file keeps\n"
               "  the device's state across runs. --key: images must be signed by that key.\n"
               "  --power-cut: power fails at those flash operations (program/erase, counted from\n"
               "  start), the device goes silent and reboots (the bootloader runs again).\n"
               "  --rx-ring: bytes the UART buffers while flash is busy (default 12288); more is lost.\n"
               "  --deflate-bits: the inflate window the device offers, 9..15 (default 12 = 4 KiB);\n"
               "  0: no deflate capability (the host then sends the image plain).\n");
}

int pf_sim_agent_main(int argc, char **argv)
{
    pf_sim_agent_config o = PF_SIM_AGENT_CONFIG_DEFAULT();
    const char *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--allow-downgrade")) {
            o.allow_downgrade = 1;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port"))
            o.port = v;
        else if (!strcmp(a, "--flash"))
            o.flash_path = v;
        else if (!strcmp(a, "--slot-kib"))
            o.slot_size = (uint32_t)strtoul(v, NULL, 0) * 1024u;
        else if (!strcmp(a, "--key"))
            o.key_path = v;
        else if (!strcmp(a, "--factory"))
            o.factory = v;
        else if (!strcmp(a, "--prog-us-per-kib"))
            o.prog_us_per_kib = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--erase-ms"))
            o.erase_ms = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--window"))
            o.window = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--payload"))
            o.payload = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--rx-ring"))
            o.rx_ring = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--power-cut"))
            o.power_cuts = v;
        else if (!strcmp(a, "--deflate-bits"))
            o.deflate_bits = (unsigned)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--log"))
            log_path = v;
        else {
            fprintf(stderr, "peerflash sim agent: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.port) {
        usage(stderr);
        return 2;
    }
    if (log_path && !(o.log = fopen(log_path, "a"))) {
        perror(log_path);
        return 1;
    }
    pf_diag d = {0};
    pf_sim_agent *sim;
    int r = pf_sim_agent_open(&sim, &o, &d);
    if (r < 0) {
        fprintf(o.log ? o.log : stderr, "%s\n", d.text);
    } else {
        r = pf_sim_agent_run(sim, pf_sim_command_signals());
        pf_sim_agent_close(sim);
    }
    if (o.log)
        fclose(o.log);
    return r < 0 ? 1 : 0;
}

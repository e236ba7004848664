/* The target driver interface: one per bootloader protocol (esp, avr, stm32,
 * agent), one shape for all, so that the flash job (pf_job.h) is written once.
 *
 * A driver is a const table of operations plus a state struct that the caller
 * provides (ctx_size bytes; an MCU caller uses the driver's own struct type).
 * Operations a protocol lacks are NULL or return PF_ERR_UNSUPPORTED; the job
 * adapts (digest-verify where the target can hash, read-back where it cannot).
 * Every failure leaves a one-line explanation in cfg->diag, quoting what the
 * target said: "target answered NACK (0x1F) to Write Memory at 0x08004000". */
#ifndef PEERFLASH_PF_TARGET_H
#define PEERFLASH_PF_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "pf_digest.h"
#include "pf_err.h"
#include "pf_memmap.h"
#include "pf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who erases flash before it is programmed. */
typedef enum pf_erase_style {
    PF_ERASE_EXPLICIT = 0, /* the job calls erase() on every touched unit first (STM32) */
    PF_ERASE_BY_WRITE = 1, /* write_begin/write erase what they program (ESP FLASH_BEGIN, AVR page write) */
} pf_erase_style;

/* A run of equal erase units: [start, start+size) in units of `unit` bytes. */
typedef struct pf_erase_region {
    uint32_t start;
    uint32_t size;
    uint32_t unit;
} pf_erase_region;

typedef struct pf_range {
    uint32_t start;
    uint32_t size;
    const char *what; /* e.g. "Optiboot boot section" */
} pf_range;

#define PF_MAX_ERASE_REGIONS 8
#define PF_MAX_PROTECTED 4

typedef struct pf_flash_geometry {
    uint32_t flash_start;   /* first address of flash as the protocol addresses it */
    uint32_t flash_size;    /* bytes */
    uint32_t write_align;   /* writes start and end on multiples of this (AVR: page size) */
    uint32_t write_max;     /* largest single write() the driver accepts (multiple of write_align) */
    uint8_t erased_value;   /* value of erased flash, used as fill (0xFF) */
    pf_erase_style erase_style;
    unsigned n_regions;     /* 0 = no erase geometry known (then unit = write_align) */
    pf_erase_region regions[PF_MAX_ERASE_REGIONS];
    unsigned n_protected;   /* ranges the job must never touch (bootloader sections) */
    pf_range protected_ranges[PF_MAX_PROTECTED];
} pf_flash_geometry;

/* Capabilities (pf_target_info.caps). */
#define PF_CAP_READ (1u << 0)      /* read() works */
#define PF_CAP_ERASE_ALL (1u << 1) /* erase_all() works */
#define PF_CAP_DIGEST (1u << 2)    /* digest() works, of kind info.digest */
#define PF_CAP_RUN (1u << 3)       /* run() starts the application */

typedef struct pf_target_info {
    char chip[32];       /* "ATmega328P", "ESP32-S3", "STM32F103xB" */
    char bootloader[48]; /* "Optiboot 4.4", "ESP32 ROM", "AN3155 v3.1" */
    uint32_t chip_id;    /* signature / PID / chip magic as the target reports it */
    uint32_t caps;
    pf_digest_kind digest;
    pf_flash_geometry geom;
    char details[160];   /* more facts for `info`, "name: value" lines (ESP: MAC, flash ID); "" = none */
} pf_target_info;

typedef struct pf_target_config {
    const pf_port *port; /* the link; the caller keeps it open */
    pf_diag *diag;       /* where failures are explained; may be NULL */
    uint32_t baud;       /* rate to connect (sync) at; 0 = the protocol's default */
    uint32_t fast_baud;  /* the user's --baud: the rate for the transfer. A driver whose
                          * protocol can switch rates (ESP CHANGE_BAUDRATE) syncs at `baud`
                          * and then switches to it; a driver that cannot (AVR, STM32)
                          * uses it as its only rate when `baud` is 0. 0 = not given. */
    const char *chip;    /* chip the user expects (--chip), NULL = accept what answers */
    const char *reset;   /* how to enter the bootloader: NULL/"auto" = the usual circuit
                          * for this target, "none" = already in the bootloader, or a
                          * driver-specific sequence (documented per driver) */
    int verbose;         /* 0 quiet .. 3 trace (through port->log) */
    /* Optional: progress inside one operation, for drivers whose single
     * write() sends a whole image (agent) or whose run() has steps of its
     * own (reboot, install, trial, confirm); phase is a pf_phase (pf_job.h),
     * done/total in bytes, or 0/1 and 1/1 for a step. May be NULL. */
    void (*progress)(void *user, int phase, uint32_t done, uint32_t total);
    void *progress_user;
    /* Optional: one line for the user about a step with consequences that a
     * driver option asked for ("removing readout protection: the chip erases
     * its whole flash..."); user is progress_user. May be NULL. */
    void (*notice)(void *user, const char *line);
} pf_target_config;

#define PF_TARGET_CONFIG_DEFAULT() \
    { .port = NULL, .diag = NULL, .baud = 0, .fast_baud = 0, .chip = NULL, .reset = NULL, .verbose = 0, \
      .progress = NULL, .progress_user = NULL, .notice = NULL }

/* The commands a driver option applies to (pf_target_option.commands), and
 * the command a session is opened for (pf_session_config.command). */
#define PF_CMD_FLASH (1u << 0)
#define PF_CMD_VERIFY (1u << 1)
#define PF_CMD_READ (1u << 2)
#define PF_CMD_ERASE (1u << 3)
#define PF_CMD_INFO (1u << 4)
#define PF_CMD_ANY 0x1Fu

/* pf_target_option.flags */
#define PF_OPT_HOST (1u << 0) /* carried out by the host through a hook of the driver (set_delta),
                               * not by set_option: the session checks it and passes it by */

/* A named option a driver declares: the CLI offers it as --NAME [ARG] and
 * lists it in `--help` from this table; a session takes it as "NAME" or
 * "NAME=VALUE" (pf_session_config.options) and hands it to set_option
 * between open() and connect(). */
typedef struct pf_target_option {
    const char *name;  /* "no-compress" */
    const char *arg;   /* metavar of its value ("OLD"), or its choices ("fast|best|auto": the
                        * value must be one of them); NULL: a flag without a value */
    const char *help;  /* one line for --help, without the driver's name */
    unsigned commands; /* PF_CMD_* it is valid for */
    unsigned flags;    /* PF_OPT_* */
} pf_target_option;

/* What a driver did beyond what the job asked of it, for the result
 * (ops->stats). All zero when nothing of the kind happened. */
#define PF_STATS_RESUME (1u << 0) /* the driver resumes cut transfers: resumed_from, wire_bytes are set */
typedef struct pf_target_stats {
    unsigned flags;           /* PF_STATS_* */
    uint32_t unchanged_bytes; /* bytes handed to write() that the flash already held: not programmed */
    uint32_t resumed_from;    /* image offset a resumed transfer started at (bytes not sent again) */
    uint32_t wire_bytes;      /* bytes of the transfer's data stream on the wire (compressed or patch) */
} pf_target_stats;

/* A chip name --chip takes (ops->chip): a table name, an alias or a smaller
 * part, and the table entry it stands for, with that entry's flash. */
typedef struct pf_target_chip {
    const char *name;     /* what the user may write ("m328p", "STM32F103x8") */
    const char *entry;    /* the table entry it means ("ATmega328P", "STM32F103xB") */
    uint32_t flash_start; /* the entry's flash, when the table knows it ... */
    uint32_t flash_size;  /* ... 0 = the table does not say (ESP: it depends on the module) */
} pf_target_chip;

/* pf_target_ops.chip_flags */
#define PF_CHIPS_SUFFIX_ANY (1u << 0) /* a part number may go on after a name without '-' (STM32F103C8T6) */

/* A patch provider for drivers that can send a patch against the image the
 * device runs (ops->set_delta): fills *out and returns 1, returns 0 to send
 * the image whole, or an error. See pf_agent_host.h for the agent's use. */
struct pf_agent_delta_patch;
typedef int (*pf_delta_provider_fn)(void *user, const uint8_t running_hash[32], const uint8_t *image, uint32_t len,
                                    struct pf_agent_delta_patch *out);

/* Every operation returns PF_OK (0) or a negative pf_err with cfg->diag set
 * (text; target code, operation and hints where the driver knows them); the
 * errors each driver returns per operation are listed in its header and in
 * docs/ERRORS.md. PF_ERR_ARG is always a caller bug. */
/* Texts only front ends show (--help lines, `info` details): a build for an
 * MCU whose constant strings live in RAM (an AVR keeps them in SRAM unless
 * placed in flash) leaves them out, and the hooks that only produce them
 * are NULL. On by default for AVR; PF_FRONT_END_TEXT forces them in. */
#if !defined(PF_NO_FRONT_END_TEXT) && defined(__AVR__) && !defined(PF_FRONT_END_TEXT)
#define PF_NO_FRONT_END_TEXT 1
#endif
#ifdef PF_NO_FRONT_END_TEXT
#define PF_FRONT_END_TEXT_OR_NULL(s) NULL
#else
#define PF_FRONT_END_TEXT_OR_NULL(s) s
#endif

typedef struct pf_target_ops {
    const char *name;    /* the --target word */
    const char *summary; /* one line for --help */
    size_t ctx_size;     /* bytes of state the caller provides for `self` (opaque, zeroed) */

    /* Prepares self (zeroed by the caller) for use with cfg; no I/O. */
    int (*open)(void *self, const pf_target_config *cfg);
    /* Enters the bootloader, synchronises, identifies the chip and fills info.
     * Refuses (PF_ERR_CHIP) a chip that differs from cfg->chip, naming both. */
    int (*connect)(void *self, pf_target_info *info);
    /* Erases [addr, addr+len): whole erase units (PF_ERASE_EXPLICIT style). */
    int (*erase)(void *self, uint32_t addr, uint32_t len);
    int (*erase_all)(void *self);
    /* A run of writes covering [addr, addr+len) follows, in address order. */
    int (*write_begin)(void *self, uint32_t addr, uint32_t len);
    /* Writes len bytes (<= write_max, aligned to write_align) at addr. */
    int (*write)(void *self, uint32_t addr, const uint8_t *data, uint32_t len);
    /* Ends the run: everything written is in flash when this returns. */
    int (*write_end)(void *self);
    /* Reads len bytes (<= write_max) at addr into buf. Returns len when all
     * of it was read (a positive count), or a negative pf_err; it never
     * returns a short count: a partial answer is PF_ERR_TIMEOUT/PROTOCOL. */
    int (*read)(void *self, uint32_t addr, uint8_t *buf, uint32_t len);
    /* Computes the target-side digest (kind info.digest) of [addr, addr+len);
     * returns the digest length written to out (<= PF_DIGEST_MAX). */
    int (*digest)(void *self, uint32_t addr, uint32_t len, uint8_t *out);
    /* Leaves the bootloader and starts the application. */
    int (*run)(void *self);
    /* Releases the session (no I/O needed); safe after a failed connect. */
    void (*close)(void *self);

    /* ---- optional: everything below may be NULL / 0 ---- */
    /* Named options, ended by an entry with name == NULL, and the setter
     * called for each between open() and connect(); value is NULL for a
     * flag. Returns PF_ERR_ARG naming the option for a bad value. */
    const pf_target_option *options;
    int (*set_option)(void *self, const char *name, const char *value);
    /* Runs after connect() what options asked for (STM32: remove readout or
     * write protection), telling the user through cfg->notice first. */
    int (*after_connect)(void *self);
    /* Checks an image (a map of one file, or of all) for the connected chip
     * before anything is written (ESP: app image header and chip id). */
    int (*check_image)(void *self, const pf_memmap *map);
    /* Fills *out with what the driver did beyond the job's requests. */
    void (*stats)(const void *self, pf_target_stats *out);
    /* More facts for `info` that need the connection (STM32 option bytes):
     * appends "name: value" lines to out (NUL-terminated, n bytes room).
     * A fact that cannot be read is a line saying so; a link failure is an
     * error. */
    int (*details)(void *self, char *out, size_t n);
    /* Sets a patch provider (the agent's delta updates); fn NULL = none. */
    int (*set_delta)(void *self, pf_delta_provider_fn fn, void *user);
    /* The job's skip-unchanged check found [addr, addr+len) erased just now
     * (its digest is erased flash's) and writes into it follow: a driver
     * whose writes erase first (PF_ERASE_BY_WRITE) may leave that out of its
     * erase. It must forget the range once it wrote into it. */
    void (*known_erased)(void *self, uint32_t addr, uint32_t len);

    /* -- for checking the user's settings before anything is opened (no state) -- */
    /* The i-th name --chip takes (0, 1, ...): returns 0 past the last; out->name
     * may be NULL (no such alias: skip it). */
    int (*chip)(unsigned i, pf_target_chip *out);
    unsigned chip_flags;        /* PF_CHIPS_* */
    /* Whether a --reset word/sequence is one this driver takes; NULL: it
     * takes "auto" and "none" only. reset_help says what it takes. */
    int (*reset_valid)(const char *spec);
    const char *reset_help;
    /* Line rates the bootloader can sync at; 0 = no bound. baud_note says
     * why, for the message ("the STM32 bootloader runs at 1200..115200 bit/s"). */
    uint32_t baud_min, baud_max;
    const char *baud_note;
    /* --target auto: probed in ascending rank, 0 = never probed. */
    unsigned probe_rank;
    /* Where an application image that carries no address of its own goes (a
     * raw binary, an agent image), for front ends that take one without
     * asking (update, serve, the ArduinoOTA upload): the start of the
     * application, never the bootloader. */
    uint32_t app_address;
} pf_target_ops;

/* A driver bound to its state: what the job works on. */
typedef struct pf_target {
    const pf_target_ops *ops;
    void *self;
    pf_target_info info; /* filled by connect */
} pf_target;

/* All drivers built into this library, NULL-terminated, and lookup by name. */
extern const pf_target_ops *const pf_target_drivers[];
const pf_target_ops *pf_target_find(const char *name);

/* The erase unit that contains addr (its start and size), from the geometry;
 * write_align when no erase regions are given. Returns 0 if addr is outside. */
int pf_geometry_unit(const pf_flash_geometry *g, uint32_t addr, uint32_t *unit_start, uint32_t *unit_size);

#ifdef __cplusplus
}
#endif
#endif

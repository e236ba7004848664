/* The one connection set-up (pf_session.h): driver lookup, option checks,
 * open, connect, the after-connect actions and the image check, for every
 * front end. Freestanding: no allocation, no stdio. */
#include "peerflash/pf_session.h"

#include <string.h>

const char *pf_command_name(unsigned command)
{
    switch (command) {
    case PF_CMD_FLASH: return "flash";
    case PF_CMD_VERIFY: return "verify";
    case PF_CMD_READ: return "read";
    case PF_CMD_ERASE: return "erase";
    case PF_CMD_INFO: return "info";
    default: return "this command";
    }
}

static const pf_target_ops *find_in(const pf_target_ops *const *drivers, const char *name)
{
    if (!drivers)
        return pf_target_find(name);
    for (size_t i = 0; name && drivers[i]; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

size_t pf_session_state_size_in(const pf_target_ops *const *drivers, const char *target)
{
    const pf_target_ops *ops = find_in(drivers, target);
    if (!ops)
        return 0;
    return ops->ctx_size ? ops->ctx_size : 1;
}

size_t pf_session_state_size(const char *target)
{
    return pf_session_state_size_in(NULL, target);
}

const pf_target_option *pf_target_option_find(const pf_target_ops *ops, const char *name, size_t name_len)
{
    if (!ops || !ops->options || !name)
        return NULL;
    for (const pf_target_option *o = ops->options; o->name; o++)
        if (strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0)
            return o;
    return NULL;
}

/* The option a word names, with its value (NULL for a flag): checked
 * against the driver's table and the command. */
static int check_one(const pf_target_ops *ops, const char *word, unsigned command, const pf_target_option **opt,
                     const char **value, pf_diag *d)
{
    const char *eq = strchr(word, '=');
    size_t len = eq ? (size_t)(eq - word) : strlen(word);
    *value = eq ? eq + 1 : NULL;
    *opt = pf_target_option_find(ops, word, len);
    if (!*opt) {
        char name[48]; /* pf_format has no %.*s */
        size_t k = 0;
        for (; k < len && k + 1 < sizeof name; k++)
            name[k] = word[k];
        name[k] = '\0';
        if (!ops->options || !ops->options[0].name)
            return pf_diag_set(d, PF_ERR_ARG, "option '%s' is not an option of the %s driver (it has none)", name,
                               ops->name);
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' is not an option of the %s driver", name, ops->name);
    }
    if (command && !((*opt)->commands & command))
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver is not for %s", (*opt)->name, ops->name,
                           pf_command_name(command));
    if ((*opt)->arg && (!*value || !**value))
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver needs a value (%s)", (*opt)->name, ops->name,
                           (*opt)->arg);
    if (!(*opt)->arg && *value)
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver takes no value", (*opt)->name, ops->name);
    if ((*opt)->arg && !pf_target_option_value_ok((*opt)->arg, *value))
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver takes %s, not '%s'", (*opt)->name, ops->name,
                           (*opt)->arg, *value);
    return PF_OK;
}

int pf_target_option_value_ok(const char *arg, const char *value)
{
    if (!arg || !strchr(arg, '|'))
        return 1; /* a metavar ("OLD"): any value */
    size_t vl = value ? strlen(value) : 0;
    for (const char *p = arg;;) {
        const char *bar = strchr(p, '|');
        size_t wl = bar ? (size_t)(bar - p) : strlen(p);
        if (wl == vl && vl && !strncmp(p, value, vl))
            return 1;
        if (!bar)
            return 0;
        p = bar + 1;
    }
}

int pf_target_check_options(const pf_target_ops *ops, const char *const *options, unsigned command, pf_diag *diag)
{
    if (!ops)
        return PF_ERR_ARG;
    for (size_t i = 0; options && options[i]; i++) {
        const pf_target_option *opt;
        const char *value;
        int r = check_one(ops, options[i], command, &opt, &value, diag);
        if (r < 0)
            return r;
    }
    return PF_OK;
}

int pf_session_open(pf_session *s, const pf_session_config *c)
{
    if (!s || !c)
        return PF_ERR_ARG;
    memset(s, 0, sizeof *s);
    pf_diag *d = c->target_cfg.diag;
    s->diag = d;
    const pf_target_ops *ops = find_in(c->drivers, c->target);
    if (!ops)
        return pf_diag_set(d, PF_ERR_ARG, "unknown target '%s'", c->target ? c->target : "(none)");
    if (!ops->open || !ops->connect)
        return pf_diag_set(d, PF_ERR_ARG, "the %s driver lacks open or connect", ops->name);
    size_t need = ops->ctx_size ? ops->ctx_size : 1;
    if (!c->state || c->state_size < need)
        return pf_diag_set(d, PF_ERR_NOMEM, "the %s driver needs %lu bytes of state, the caller gave %lu", ops->name,
                           (unsigned long)need, (unsigned long)(c->state ? c->state_size : 0));
    int r = pf_target_check_options(ops, c->options, c->command, d);
    if (r < 0)
        return r;
    for (size_t i = 0; c->options && c->options[i]; i++) {
        const pf_target_option *opt;
        const char *value;
        check_one(ops, c->options[i], c->command, &opt, &value, d);
        if (!(opt->flags & PF_OPT_HOST) && !ops->set_option)
            return pf_diag_set(d, PF_ERR_ARG, "the %s driver declares option '%s' but cannot set it", ops->name,
                               opt->name);
    }
    memset(c->state, 0, c->state_size);
    s->target.ops = ops;
    s->target.self = c->state;
    r = ops->open(c->state, &c->target_cfg);
    if (r < 0) {
        pf_diag_op(d, "open");
        return r;
    }
    s->opened = 1;
    for (size_t i = 0; c->options && c->options[i]; i++) {
        const pf_target_option *opt;
        const char *value;
        check_one(ops, c->options[i], c->command, &opt, &value, d);
        if (opt->flags & PF_OPT_HOST)
            continue; /* the front end carries it out through a hook (set_delta) */
        r = ops->set_option(c->state, opt->name, value);
        if (r < 0) {
            pf_diag_op(d, "option");
            return r;
        }
    }
    return PF_OK;
}

int pf_session_connect(pf_session *s)
{
    if (!s || !s->opened)
        return PF_ERR_STATE;
    const pf_target_ops *ops = s->target.ops;
    int r = ops->connect(s->target.self, &s->target.info);
    if (r < 0) {
        pf_diag_op(s->diag, "connect");
        return r;
    }
    s->connected = 1;
    if (ops->after_connect) {
        r = ops->after_connect(s->target.self);
        if (r < 0) {
            pf_diag_op(s->diag, "connect");
            return r;
        }
    }
    return PF_OK;
}

int pf_session_check_image(pf_session *s, const pf_memmap *map)
{
    if (!s || !map)
        return PF_ERR_ARG;
    if (!s->connected)
        return PF_ERR_STATE;
    if (!s->target.ops->check_image)
        return PF_OK;
    int r = s->target.ops->check_image(s->target.self, map);
    if (r < 0)
        pf_diag_op(s->diag, "check");
    return r;
}

void pf_session_stats(const pf_session *s, pf_target_stats *out)
{
    memset(out, 0, sizeof *out);
    if (s && s->opened && s->target.ops->stats)
        s->target.ops->stats(s->target.self, out);
}

int pf_session_details(pf_session *s, char *out, size_t n)
{
    if (!s || !out || !n)
        return PF_ERR_ARG;
    if (!s->connected)
        return PF_ERR_STATE;
    size_t len = strlen(s->target.info.details);
    if (len >= n)
        len = n - 1;
    memcpy(out, s->target.info.details, len);
    out[len] = '\0';
    if (len && out[len - 1] != '\n' && len + 1 < n) {
        out[len++] = '\n';
        out[len] = '\0';
    }
    if (!s->target.ops->details)
        return PF_OK;
    int r = s->target.ops->details(s->target.self, out + len, n - len);
    if (r < 0)
        pf_diag_op(s->diag, "info");
    return r;
}

void pf_session_close(pf_session *s)
{
    if (!s)
        return;
    if (s->opened && s->target.ops->close)
        s->target.ops->close(s->target.self);
    s->opened = s->connected = 0;
}

size_t pf_target_list(const pf_target_ops *const *drivers, const pf_target_ops **out, size_t max)
{
    if (!drivers)
        drivers = pf_target_drivers;
    size_t n = 0;
    /* ranked ones by rank (a few drivers: a selection is plenty), then the rest */
    unsigned last = 0;
    for (;;) {
        unsigned best = 0;
        for (size_t i = 0; drivers[i]; i++)
            if (drivers[i]->probe_rank > last && (!best || drivers[i]->probe_rank < best))
                best = drivers[i]->probe_rank;
        if (!best)
            break;
        for (size_t i = 0; drivers[i]; i++)
            if (drivers[i]->probe_rank == best && n < max)
                out[n++] = drivers[i];
        last = best;
    }
    for (size_t i = 0; drivers[i]; i++)
        if (!drivers[i]->probe_rank && n < max)
            out[n++] = drivers[i];
    return n;
}

/* Appends text to out at *at (the length counted even past n). */
static void append(char *out, size_t n, size_t *at, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++, (*at)++)
        if (*at + 1 < n)
            out[*at] = text[i];
    if (n)
        out[*at < n ? *at : n - 1] = '\0';
}

static void append_str(char *out, size_t n, size_t *at, const char *text)
{
    append(out, n, at, text, strlen(text));
}

#define HELP_COLUMN 21u
#define HELP_WIDTH 96u

/* Words of text, wrapped at HELP_WIDTH with continuation lines indented to
 * HELP_COLUMN; col is the current column. */
static void append_wrapped(char *out, size_t n, size_t *at, const char *text, size_t *col)
{
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        size_t w = (size_t)(e - p);
        if (!w)
            break;
        if (*col + 1 + w > HELP_WIDTH && *col > HELP_COLUMN) {
            append_str(out, n, at, "\n");
            for (*col = 0; *col < HELP_COLUMN; (*col)++)
                append_str(out, n, at, " ");
        } else if (*col > HELP_COLUMN) {
            append_str(out, n, at, " ");
            (*col)++;
        }
        append(out, n, at, p, w);
        *col += w;
        p = e;
    }
}

size_t pf_target_options_help(const pf_target_ops *const *drivers, unsigned command, char *out, size_t n)
{
    const pf_target_ops *list[32];
    size_t nd = pf_target_list(drivers, list, sizeof list / sizeof list[0]);
    size_t at = 0;
    if (n)
        out[0] = '\0';
    for (size_t d = 0; d < nd; d++) {
        for (const pf_target_option *o = list[d]->options; o && o->name; o++) {
            if (!(o->commands & command))
                continue;
            int seen = 0; /* listed already, with an earlier driver */
            for (size_t k = 0; k < d && !seen; k++)
                seen = pf_target_option_find(list[k], o->name, strlen(o->name)) != NULL &&
                       (pf_target_option_find(list[k], o->name, strlen(o->name))->commands & command);
            if (seen)
                continue;
            size_t col = 2;
            append_str(out, n, &at, "  --");
            append_str(out, n, &at, o->name);
            col += 2 + strlen(o->name);
            if (o->arg) {
                append_str(out, n, &at, " ");
                append_str(out, n, &at, o->arg);
                col += 1 + strlen(o->arg);
            }
            do {
                append_str(out, n, &at, " ");
                col++;
            } while (col < HELP_COLUMN);
            /* the drivers that take it: "esp, agent:" */
            int first = 1;
            for (size_t k = d; k < nd; k++) {
                const pf_target_option *ko = pf_target_option_find(list[k], o->name, strlen(o->name));
                if (!ko || !(ko->commands & command))
                    continue;
                if (!first)
                    append_str(out, n, &at, ", ");
                append_str(out, n, &at, list[k]->name);
                col += strlen(list[k]->name) + (first ? 0 : 2);
                first = 0;
            }
            append_str(out, n, &at, ":");
            col++;
            append_wrapped(out, n, &at, o->help ? o->help : "", &col);
            append_str(out, n, &at, "\n");
        }
    }
    return at;
}

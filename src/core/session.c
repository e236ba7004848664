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
        if (!ops->options || !ops->options[0].name)
            return pf_diag_set(d, PF_ERR_ARG, "option '%.*s' is not an option of the %s driver (it has none)",
                               (int)len, word, ops->name);
        return pf_diag_set(d, PF_ERR_ARG, "option '%.*s' is not an option of the %s driver", (int)len, word,
                           ops->name);
    }
    if (command && !((*opt)->commands & command))
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver is not for %s", (*opt)->name, ops->name,
                           pf_command_name(command));
    if ((*opt)->arg && (!*value || !**value))
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver needs a value (%s)", (*opt)->name, ops->name,
                           (*opt)->arg);
    if (!(*opt)->arg && *value)
        return pf_diag_set(d, PF_ERR_ARG, "option '%s' of the %s driver takes no value", (*opt)->name, ops->name);
    return PF_OK;
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

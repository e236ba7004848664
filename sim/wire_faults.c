/* The link emulator's faults (see wire.h): one seeded PRNG stream per
 * direction and fault kind, indexed by byte (or bit) position, so a seed
 * gives the same faults at the same positions whatever the timing. */
#include <math.h>

#include "wire_internal.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* Trials before the next event of probability p (geometric); UINT64_MAX if p <= 0. */
static uint64_t geometric(uint64_t *s, double p)
{
    if (p <= 0)
        return UINT64_MAX;
    if (p >= 1)
        return 0;
    double g = floor(log(uniform(s)) / log1p(-p));
    return g >= 1.8e19 ? UINT64_MAX : (uint64_t)g;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void wire_faults_init(wire_faults *f, const pf_wire_config *c, int dir)
{
    uint64_t base = c->seed * 0x100000001B3ull + (uint64_t)dir * 0x1000;
    f->idx = 0;
    f->burst_left = 0;
    f->rng_flip = base ^ 0x1111111111111111ull;
    f->rng_drop = base ^ 0x2222222222222222ull;
    f->rng_burst = base ^ 0x3333333333333333ull;
    f->rng_data = base ^ 0x4444444444444444ull;
    f->next_flip_bit = geometric(&f->rng_flip, c->flip_rate);
    f->next_drop = geometric(&f->rng_drop, c->drop_rate);
    f->next_burst = c->burst_every ? geometric(&f->rng_burst, 1.0 / c->burst_every) : UINT64_MAX;
}

uint8_t wire_faults_apply(wire_faults *f, const pf_wire_config *c, pf_wire_dir_stats *st, uint8_t byte, int *dropped)
{
    uint64_t i = f->idx++;
    *dropped = 0;
    if (i == f->next_drop) {
        *dropped = 1;
        st->dropped++;
        f->next_drop = add_sat(f->next_drop, 1 + geometric(&f->rng_drop, c->drop_rate));
    }
    if (c->burst_every && c->burst_len) {
        if (!f->burst_left && i == f->next_burst) {
            f->burst_left = c->burst_len;
            f->next_burst = add_sat(i + c->burst_len, geometric(&f->rng_burst, 1.0 / c->burst_every));
        }
        if (f->burst_left) {
            f->burst_left--;
            uint8_t g = (uint8_t)splitmix64(&f->rng_data);
            if (g == byte)
                g ^= 0x55;
            byte = g;
            st->garbled++;
        }
    }
    while (f->next_flip_bit < (i + 1) * 8) {
        byte ^= (uint8_t)(1u << (f->next_flip_bit - i * 8));
        st->flipped_bits++;
        f->next_flip_bit = add_sat(f->next_flip_bit, 1 + geometric(&f->rng_flip, c->flip_rate));
    }
    return byte;
}

int wire_cut_count(pf_wire *w, wire_dir *d, unsigned mask)
{
    if (w->cfg.cut_after < 0 || !(w->cfg.cut_dirs & mask))
        return 0;
    if (w->cut_done) {
        d->st.cut++;
        return 1;
    }
    if (++w->cut_count >= w->cfg.cut_after) {
        w->cut_done = 1;
        pf_wire_log(w, "cable cut after %lld bytes", (long long)w->cut_count);
    }
    return 0;
}

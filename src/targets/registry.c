/* The drivers built into libpeerflash. Each driver file defines one
 * `const pf_target_ops pf_target_<name>`; add it here once it is real. */
#include <string.h>

#include "peerflash/pf_esp.h"
#include "peerflash/pf_target.h"

extern const pf_target_ops pf_target_agent;
extern const pf_target_ops pf_target_avr;
extern const pf_target_ops pf_target_stm32;
const pf_target_ops *const pf_target_drivers[] = {
    &pf_target_agent,
    &pf_target_avr,
    &pf_target_stm32,
    &pf_target_esp,
    NULL,
};

const pf_target_ops *pf_target_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; pf_target_drivers[i]; i++)
        if (strcmp(pf_target_drivers[i]->name, name) == 0)
            return pf_target_drivers[i];
    return NULL;
}

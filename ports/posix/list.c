/* Serial port listing through libserialport (which does this part well:
 * USB VID:PID, serial number, manufacturer, product on Linux, macOS, Windows). */
#include <libserialport.h>
#include <string.h>

#include "peerflash/pf_posix.h"

static void copy_str(char *dst, size_t size, const char *src)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int pf_posix_list_ports(struct pf_port_listing *out, int max, pf_diag *diag)
{
    if (max < 0 || (max > 0 && !out))
        return PF_ERR_ARG;
    struct sp_port **list = NULL;
    enum sp_return r = sp_list_ports(&list);
    if (r != SP_OK) {
        char *msg = r == SP_ERR_FAIL ? sp_last_error_message() : NULL;
        int rc = pf_diag_set(diag, PF_ERR_IO, "cannot list serial ports (libserialport error %d%s%s)", (int)r,
                             msg ? ": " : "", msg ? msg : "");
        if (msg)
            sp_free_error_message(msg);
        return rc;
    }
    int count = 0;
    for (int i = 0; list[i] && count < max; i++) {
        struct pf_port_listing *p = &out[count++];
        memset(p, 0, sizeof *p);
        copy_str(p->path, sizeof p->path, sp_get_port_name(list[i]));
        copy_str(p->description, sizeof p->description, sp_get_port_description(list[i]));
        if (sp_get_port_transport(list[i]) == SP_TRANSPORT_USB) {
            int vid = 0, pid = 0;
            if (sp_get_port_usb_vid_pid(list[i], &vid, &pid) == SP_OK) {
                p->usb = 1;
                p->vid = (unsigned)vid;
                p->pid = (unsigned)pid;
            }
            copy_str(p->serial, sizeof p->serial, sp_get_port_usb_serial(list[i]));
            copy_str(p->manufacturer, sizeof p->manufacturer, sp_get_port_usb_manufacturer(list[i]));
            if (!p->description[0])
                copy_str(p->description, sizeof p->description, sp_get_port_usb_product(list[i]));
        }
    }
    sp_free_port_list(list);
    return count;
}

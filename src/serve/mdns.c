/* mDNS for `peerflash serve`: each target with an --ota-port or
 * --arduino-ota is advertised as an Arduino network port (_arduino._tcp, TXT
 * board, tcp_check, ssh_upload, auth_upload: the keys the Arduino IDE reads),
 * through Debian's avahi (libavahi-client, which talks to avahi-daemon over
 * D-Bus). An --ota-port target's SRV port is its espota UDP port; an
 * --arduino-ota target's is the HTTP port, with the arduinoOTA tool's
 * endpoint_upload, endpoint_sync, endpoint_reset and sync_return (the IDE
 * turns each TXT key into a port property the AVR core's pattern reads).
 * Without a running avahi-daemon the daemon says so once and works on,
 * unadvertised. */
#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/error.h>
#include <avahi-common/thread-watch.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "serve.h"

typedef struct mdns {
    serve_daemon *d;
    AvahiThreadedPoll *poll;
    AvahiClient *client;
    AvahiEntryGroup *group;
} mdns;

static mdns the_mdns; /* one per daemon process */

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *user)
{
    (void)g;
    mdns *m = user;
    if (state == AVAHI_ENTRY_GROUP_ESTABLISHED)
        serve_log(m->d, "mdns", NULL, NULL, "advertised as _arduino._tcp (the Arduino IDE lists these network ports)");
    else if (state == AVAHI_ENTRY_GROUP_COLLISION)
        serve_log(m->d, "mdns", NULL, NULL, "a target's name is taken on the network: give it another --name");
    else if (state == AVAHI_ENTRY_GROUP_FAILURE)
        serve_log(m->d, "mdns", NULL, NULL, "avahi failed to publish: %s",
                  avahi_strerror(avahi_client_errno(m->client)));
}

static void publish(mdns *m, AvahiClient *c)
{
    serve_daemon *d = m->d;
    if (!m->group && !(m->group = avahi_entry_group_new(c, group_cb, m))) {
        serve_log(d, "mdns", NULL, NULL, "avahi: %s", avahi_strerror(avahi_client_errno(c)));
        return;
    }
    /* a loopback daemon is advertised on the loopback interface only: an
     * address elsewhere would point the IDE at a port nobody listens on */
    AvahiIfIndex iface = AVAHI_IF_UNSPEC;
    if (!strncmp(d->cfg.listen_addr, "127.", 4))
        iface = (AvahiIfIndex)if_nametoindex("lo");
    int n = 0;
    for (int i = 0; i < d->ntargets; i++) {
        const serve_target *t = &d->targets[i];
        if (!t->cfg.ota_port && !t->cfg.arduino_ota)
            continue;
        char board[80];
        snprintf(board, sizeof board, "board=%s", t->cfg.board ? t->cfg.board : t->cfg.driver);
        int r;
        if (t->cfg.ota_port) {
            r = avahi_entry_group_add_service(m->group, iface, AVAHI_PROTO_INET, 0, t->cfg.name, "_arduino._tcp", NULL,
                                              NULL, t->cfg.ota_port, board, "tcp_check=no", "ssh_upload=no",
                                              d->cfg.ota_password_md5[0] ? "auth_upload=yes" : "auth_upload=no", NULL);
        } else {
            /* the names were checked to be plain words (no '=', no space): the
             * IDE splits TXT entries on '=' and its pattern is not quoted */
            char up[120], sync[120], reset[120];
            snprintf(up, sizeof up, "endpoint_upload=/api/targets/%s/arduino/upload", t->cfg.name);
            snprintf(sync, sizeof sync, "endpoint_sync=/api/targets/%s/arduino/sync", t->cfg.name);
            snprintf(reset, sizeof reset, "endpoint_reset=/api/targets/%s/arduino/reset", t->cfg.name);
            r = avahi_entry_group_add_service(m->group, iface, AVAHI_PROTO_INET, 0, t->cfg.name, "_arduino._tcp", NULL,
                                              NULL, d->http_port, board, "tcp_check=no", "ssh_upload=no",
                                              d->cfg.token[0] ? "auth_upload=yes" : "auth_upload=no", up, sync, reset,
                                              "sync_return=200:SYNC", NULL);
        }
        if (r < 0)
            serve_log(d, "mdns", t, NULL, "cannot advertise: %s", avahi_strerror(r));
        else
            n++;
    }
    if (n)
        avahi_entry_group_commit(m->group);
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *user)
{
    mdns *m = user;
    if (state == AVAHI_CLIENT_S_RUNNING)
        publish(m, c);
    else if (state == AVAHI_CLIENT_FAILURE)
        serve_log(m->d, "mdns", NULL, NULL, "avahi: %s", avahi_strerror(avahi_client_errno(c)));
}

void serve_mdns_start(serve_daemon *d)
{
    mdns *m = &the_mdns;
    memset(m, 0, sizeof *m);
    m->d = d;
    int any = 0;
    for (int i = 0; i < d->ntargets; i++)
        any |= d->targets[i].cfg.ota_port != 0 || d->targets[i].cfg.arduino_ota;
    if (!any || !d->cfg.mdns)
        return;
    int err = 0;
    if (!(m->poll = avahi_threaded_poll_new()))
        return;
    m->client = avahi_client_new(avahi_threaded_poll_get(m->poll), 0, client_cb, m, &err);
    if (!m->client) {
        serve_log(d, "mdns", NULL, NULL,
                  "not advertised: %s (start avahi-daemon for the Arduino IDE to list the ports, or give --no-mdns)",
                  avahi_strerror(err));
        avahi_threaded_poll_free(m->poll);
        m->poll = NULL;
        return;
    }
    avahi_threaded_poll_start(m->poll);
}

void serve_mdns_stop(serve_daemon *d)
{
    (void)d;
    mdns *m = &the_mdns;
    if (!m->poll)
        return;
    avahi_threaded_poll_stop(m->poll);
    avahi_client_free(m->client); /* frees the group too: the records are withdrawn */
    avahi_threaded_poll_free(m->poll);
    m->poll = NULL;
}

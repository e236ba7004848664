/* Signed update manifests: versions, signing and its checks, payload
 * errors, selection by chip and board, relative URLs. */
#include <stdlib.h>
#include <string.h>

#include "peerflash/pf_manifest.h"
#include "peerflash/pf_sign.h"
#include "pf_test.h"

#define SHA_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static const char payload[] =
    "{\"manifest\": 1, \"name\": \"lab\", \"images\": [\n"
    " {\"target\": \"avr\", \"chip\": \"ATmega328P\", \"board\": \"uno\", \"version\": \"1.2.0\", \"size\": 1200,"
    "  \"sha256\": \"" SHA_A "\", \"url\": \"blink-1.2.0.hex\"},\n"
    " {\"target\": \"avr\", \"chip\": \"ATmega328P\", \"board\": \"nano\", \"version\": \"1.2.0+7\", \"size\": 1300,"
    "  \"sha256\": \"" SHA_A "\", \"url\": \"nano/blink.hex\"},\n"
    " {\"target\": \"stm32\", \"chip\": \"STM32F103xB\", \"version\": \"3\", \"size\": 4096,"
    "  \"sha256\": \"" SHA_A "\", \"url\": \"https://cdn.example/f1.bin\", \"address\": \"0x08000000\"}\n"
    "]}\n";

static void test_versions(void)
{
    pf_manifest_version a, b;
    CHECK_EQ(pf_manifest_parse_version("1.2.3+4", &a), 0);
    CHECK(a.major == 1 && a.minor == 2 && a.revision == 3 && a.build == 4);
    CHECK_EQ(pf_manifest_parse_version("2", &b), 0);
    CHECK(b.major == 2 && b.minor == 0 && b.revision == 0 && b.build == 0);
    CHECK(pf_manifest_version_cmp(&a, &b) < 0);
    CHECK(pf_manifest_version_cmp(&b, &a) > 0);
    CHECK_EQ(pf_manifest_parse_version("1.2+9", &a), 0);
    CHECK(a.minor == 2 && a.revision == 0 && a.build == 9);
    CHECK_EQ(pf_manifest_parse_version("1.2.3.4", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("1..2", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("v1", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("1.2.", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("4294967296", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("", &a), -1);
    CHECK_EQ(pf_manifest_parse_version("1+2+3", &a), -1);
}

static void test_sign_and_load(void)
{
    static char key[1024], other[1024];
    pf_diag d;
    REQUIRE(pf_sign_keygen(key, sizeof key, &d) == PF_OK);
    REQUIRE(pf_sign_keygen(other, sizeof other, &d) == PF_OK);
    uint8_t pub[128], other_pub[128];
    int pl = pf_sign_pubkey_der(key, pub, sizeof pub, &d);
    int opl = pf_sign_pubkey_der(other, other_pub, sizeof other_pub, &d);
    REQUIRE(pl > 0 && opl > 0);
    char *env = NULL;
    size_t env_len = 0;
    REQUIRE(pf_manifest_sign(payload, strlen(payload), key, &env, &env_len, &d) == PF_OK);
    CHECK_EQ(strlen(env), env_len);

    pf_manifest m;
    CHECK_EQ(pf_manifest_load((const uint8_t *)env, env_len, pub, (size_t)pl, &m, &d), PF_OK);
    CHECK_EQ(m.n_images, 3);
    CHECK(!strcmp(m.name, "lab"));
    CHECK(!strcmp(m.images[2].url, "https://cdn.example/f1.bin"));
    CHECK(m.images[2].have_address && m.images[2].address == 0x08000000u);
    CHECK(!m.images[0].have_address);
    CHECK_EQ(m.images[1].ver.build, 7);
    CHECK_EQ(m.images[0].size, 1200);
    CHECK_EQ(m.images[0].sha256[1], 0x11);
    pf_manifest_free(&m);

    /* another key: refused by its key id, naming both */
    CHECK_EQ(pf_manifest_load((const uint8_t *)env, env_len, other_pub, (size_t)opl, &m, &d), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(d.text, "signed by key");
    CHECK_EQ(m.n_images, 0);

    /* a changed payload: "1.2.0" -> "9.2.0" inside the escaped string */
    char *tampered = strdup(env);
    char *v = strstr(tampered, "1.2.0");
    REQUIRE(v != NULL);
    v[0] = '9';
    CHECK_EQ(pf_manifest_load((const uint8_t *)tampered, env_len, pub, (size_t)pl, &m, &d), PF_ERR_AUTH);
    CHECK_STR_CONTAINS(d.text, "changed after signing");
    free(tampered);

    /* a changed signature */
    tampered = strdup(env);
    char *s = strstr(tampered, "\"signature\"");
    REQUIRE(s != NULL);
    s = strchr(s + 12, '"') + 5;
    *s = *s == 'A' ? 'B' : 'A';
    CHECK_EQ(pf_manifest_load((const uint8_t *)tampered, env_len, pub, (size_t)pl, &m, &d), PF_ERR_AUTH);
    free(tampered);

    /* the key id removed and the file signed by another key: the signature check still refuses */
    char *env2 = NULL;
    size_t env2_len = 0;
    REQUIRE(pf_manifest_sign(payload, strlen(payload), other, &env2, &env2_len, &d) == PF_OK);
    char *k = strstr(env2, "\"key_id\"");
    REQUIRE(k != NULL);
    memcpy(k, "\"key_xx\"", 8);
    CHECK_EQ(pf_manifest_load((const uint8_t *)env2, env2_len, pub, (size_t)pl, &m, &d), PF_ERR_AUTH);
    free(env2);

    /* an unsigned manifest given where a signed one is expected */
    CHECK_EQ(pf_manifest_load((const uint8_t *)payload, strlen(payload), pub, (size_t)pl, &m, &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "not a signed manifest");
    CHECK_EQ(pf_manifest_load((const uint8_t *)"[1,2", 4, pub, (size_t)pl, &m, &d), PF_ERR_FORMAT);
    free(env);
}

static int parse(const char *text, pf_diag *d)
{
    pf_manifest m;
    int r = pf_manifest_parse_payload(text, strlen(text), &m, d);
    if (r == PF_OK)
        pf_manifest_free(&m);
    return r;
}

static void test_payload_errors(void)
{
    pf_diag d;
#define IMG(extra) "{\"manifest\":1,\"images\":[{\"target\":\"avr\",\"version\":\"1\",\"sha256\":\"" SHA_A "\"," extra "}]}"
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"a.hex\""), &d), PF_OK);
    CHECK_EQ(parse(IMG("\"size\":10"), &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "\"url\" is missing");
    CHECK_EQ(parse(IMG("\"size\":-1,\"url\":\"a\""), &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "out of range");
    CHECK_EQ(parse(IMG("\"size\":\"10\",\"url\":\"a\""), &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":1.5,\"url\":\"a\""), &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"\""), &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "empty");
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":7"), &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"a\",\"address\":\"0x1g\""), &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"a\",\"address\":\"0x100000000\""), &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"a\",\"chip\":\"0123456789012345678901234567890123\""), &d),
             PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "longer than");
    CHECK_EQ(parse("{\"manifest\":1,\"images\":[{\"target\":\"avr\",\"version\":\"1\",\"sha256\":\"00\","
                   "\"size\":10,\"url\":\"a\"}]}",
                   &d),
             PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "64 hex digits");
    CHECK_EQ(parse("{\"manifest\":2,\"images\":[]}", &d), PF_ERR_FORMAT);
    CHECK_EQ(parse("{\"manifest\":1,\"images\":[]}", &d), PF_ERR_FORMAT);
    CHECK_EQ(parse("{\"manifest\":1,\"images\":{}}", &d), PF_ERR_FORMAT);
    CHECK_EQ(parse("{\"manifest\":1,\"images\":[3]}", &d), PF_ERR_FORMAT);
    CHECK_EQ(parse(IMG("\"size\":10,\"url\":\"a\"") " x", &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "at byte");
    CHECK_EQ(parse("{\"manifest\":1,", &d), PF_ERR_FORMAT);
    CHECK_STR_CONTAINS(d.text, "ends too early");
    CHECK_EQ(parse("[]", &d), PF_ERR_FORMAT);
    CHECK_EQ(parse("", &d), PF_ERR_FORMAT);
#undef IMG
}

static void test_select(void)
{
    pf_manifest m;
    pf_diag d;
    REQUIRE(pf_manifest_parse_payload(payload, strlen(payload), &m, &d) == PF_OK);
    const pf_manifest_image *im;
    CHECK_EQ(pf_manifest_select(&m, "stm32", "stm32f103xb", NULL, &im, &d), PF_OK);
    CHECK(im == &m.images[2]);
    CHECK_EQ(pf_manifest_select(&m, "avr", "ATmega328P", NULL, &im, &d), PF_ERR_ARG);
    CHECK(im == NULL);
    CHECK_STR_CONTAINS(d.text, "give --board");
    CHECK_EQ(pf_manifest_select(&m, "avr", "ATmega328P", "nano", &im, &d), PF_OK);
    CHECK(im == &m.images[1]);
    CHECK_EQ(pf_manifest_select(&m, "avr", "ATmega2560", NULL, &im, &d), PF_ERR_CHIP);
    CHECK_STR_CONTAINS(d.text, "no image for avr ATmega2560");
    CHECK_STR_CONTAINS(d.text, "stm32/STM32F103xB");
    CHECK_EQ(pf_manifest_select(&m, "esp", "ESP32", NULL, &im, &d), PF_ERR_CHIP);
    pf_manifest_free(&m);
}

static void test_urls(void)
{
    char out[256];
    CHECK_EQ(pf_manifest_resolve_url("http://h:8/a/b/m.json", "x.hex", out, sizeof out), 0);
    CHECK(!strcmp(out, "http://h:8/a/b/x.hex"));
    CHECK_EQ(pf_manifest_resolve_url("http://h/a/b/m.json?sig=1", "../c/./x.hex", out, sizeof out), 0);
    CHECK(!strcmp(out, "http://h/a/c/x.hex"));
    CHECK_EQ(pf_manifest_resolve_url("https://h/a/m.json", "/root.bin", out, sizeof out), 0);
    CHECK(!strcmp(out, "https://h/root.bin"));
    CHECK_EQ(pf_manifest_resolve_url("https://h/a/m.json", "https://o/x", out, sizeof out), 0);
    CHECK(!strcmp(out, "https://o/x"));
    CHECK_EQ(pf_manifest_resolve_url("https://h", "x", out, sizeof out), 0);
    CHECK(!strcmp(out, "https://h/x"));
    CHECK_EQ(pf_manifest_resolve_url("https://h/a/m.json", "../../../x", out, sizeof out), 0);
    CHECK(!strcmp(out, "https://h/x"));
    CHECK_EQ(pf_manifest_resolve_url("dir/m.json", "img/x.hex", out, sizeof out), 0);
    CHECK(!strcmp(out, "dir/img/x.hex"));
    CHECK_EQ(pf_manifest_resolve_url("m.json", "x.hex", out, sizeof out), 0);
    CHECK(!strcmp(out, "x.hex"));
    CHECK_EQ(pf_manifest_resolve_url("/srv/m.json", "../x.hex", out, sizeof out), 0);
    CHECK(!strcmp(out, "/x.hex"));
    CHECK_EQ(pf_manifest_resolve_url("http://h/a/m.json", "x.hex?v=2", out, sizeof out), 0);
    CHECK(!strcmp(out, "http://h/a/x.hex?v=2"));
    CHECK_EQ(pf_manifest_resolve_url("http://h/a/m.json", "x.hex", out, 10), -1);
}

int main(void)
{
    test_versions();
    test_sign_and_load();
    test_payload_errors();
    test_select();
    test_urls();
    return pf_test_summary();
}

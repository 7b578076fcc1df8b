/*
 * probe: the plugin the test suites load into a real proxy. Plain C against s2s_plugin.h, built with `cc` by the
 * tests (never shipped). Each behaviour is triggered by the traffic itself, so one build covers many tests:
 *
 *   options  {"tag": "A"}             every call gets metadata x-probe-chain: A (added, so chains show their order)
 *            {"refuse": true}         config_new fails
 *            {"wantsNothing": true}   wants() answers 0 for everything
 *            {"rejectSchema": true}   schema_ready fails (schema builds only)
 *            {"errorTrailers": true}  also wants the trailers of failed calls only (ABI 1.1), as below
 *            {"metadata": true}       also wants the response's metadata (ABI 1.1): adds x-probe-seen-headers: TAG
 *                                     to its headers and x-probe-trailer: TAG to its trailers (so chains show their
 *                                     order), says in x-probe-status-edit whether the host let it edit grpc-status
 *                                     ("refused" is right); trailers with x-probe-reject-trailers are rejected
 *                                     (FAILED_PRECONDITION), trailers with x-probe-fail-trailers fail (S2S_ERROR)
 *   metadata x-probe-reject: CODE     call_start rejects the call with that gRPC code
 *            x-probe-error: 1         call_start fails (S2S_ERROR)
 *   message  "upper:..."              replaced by its upper-case form
 *            "reject"                 rejected with PERMISSION_DENIED
 *            "error"                  plugin failure (S2S_ERROR)
 *            "count"                  replaced by "count=N<tag>" (N: per-call request counter)
 *            "count=..." (response)   replaced by "...;resp=M" (M: per-call response counter)
 *            "schema" (request)       replaced by "schema=<bytes of the FileDescriptorSet>" (schema builds only)
 *            "grow:N"                 replaced by N bytes of 'g' (large replacements)
 *
 * Build variants (-D): PROBE_NEEDS_SCHEMA, PROBE_ABI_MAJOR=n, PROBE_NO_ENTRY, PROBE_REFUSE_ENTRY, PROBE_ABI_1_0 (the
 * table as a plugin built against the 1.0 header exports it), PROBE_SWIFT_RELEASE="x.y" (poses as a Swift plugin built
 * with that release), PROBE_BUILD="text"
 * (the version is that text, and every call gets metadata x-probe-build: text; tells rebuilds of one file apart).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s_plugin.h"

#ifndef PROBE_ABI_MAJOR
#define PROBE_ABI_MAJOR S2S_PLUGIN_ABI_MAJOR
#endif

typedef struct {
    const s2s_host_api_t *api;
    s2s_host_t *host;
    char tag[32];
    int wants_nothing;
    int wants_metadata;
    int wants_error_trailers;
    int reject_schema;
    size_t schema_bytes;
    uint32_t messages_metric;
} probe_config_t;

typedef struct {
    unsigned requests;
    unsigned responses;
} probe_call_t;

static int has_token(s2s_bytes_t json, const char *token) {
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= json.len; i++) {
        if (memcmp(json.data + i, token, n) == 0) return 1;
    }
    return 0;
}

static void *probe_config_new(const s2s_plugin_api_t *plugin, const s2s_host_api_t *api, s2s_host_t *host,
                              s2s_bytes_t options, char *error, size_t error_capacity) {
    (void)plugin;
    if (has_token(options, "\"refuse\":true")) {
        snprintf(error, error_capacity, "refusing as the options ask (remove \"refuse\" to load)");
        return NULL;
    }
    probe_config_t *config = calloc(1, sizeof *config);
    if (!config) return NULL;
    config->api = api;
    config->host = host;
    config->wants_nothing = has_token(options, "\"wantsNothing\":true");
    config->wants_metadata = has_token(options, "\"metadata\":true");
    config->wants_error_trailers = has_token(options, "\"errorTrailers\":true");
    config->reject_schema = has_token(options, "\"rejectSchema\":true");
    const char *key = "\"tag\":\"";
    size_t n = strlen(key);
    for (size_t i = 0; i + n < options.len; i++) {
        if (memcmp(options.data + i, key, n) == 0) {
            size_t j = 0;
            for (size_t k = i + n; k < options.len && options.data[k] != '"' && j + 1 < sizeof config->tag; k++) {
                config->tag[j++] = (char)options.data[k];
            }
            config->tag[j] = 0;
            break;
        }
    }
    config->messages_metric = api->define_metric(host, S2S_METRIC_COUNTER, "probe_messages_total", 20,
                                                 "Messages the probe saw", 22);
    const char *line = "probe configured";
    api->log(host, S2S_LOG_INFO, line, strlen(line));
    return config;
}

static void probe_config_destroy(void *config) { free(config); }

#ifdef PROBE_NEEDS_SCHEMA
static s2s_outcome_t probe_schema_ready(void *raw, s2s_bytes_t schema, char *error, size_t error_capacity) {
    probe_config_t *config = raw;
    if (config->reject_schema) {
        snprintf(error, error_capacity, "the schema lacks what the probe needs (rejectSchema)");
        return S2S_ERROR;
    }
    config->schema_bytes = schema.len;
    return S2S_OK;
}
#endif

static uint32_t probe_wants(void *raw, s2s_bytes_t method, s2s_side_t side) {
    (void)method;
    (void)side;
    probe_config_t *config = raw;
    if (config->wants_nothing) return 0;
    return S2S_WANTS_CALL | S2S_WANTS_REQUEST_MESSAGES | S2S_WANTS_RESPONSE_MESSAGES
        | (config->wants_metadata ? S2S_WANTS_RESPONSE_METADATA : 0u)
        | (config->wants_error_trailers ? S2S_WANTS_ERROR_TRAILERS : 0u);
}

static int metadata_has(const s2s_metadata_t *metadata, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < metadata->header_count; i++) {
        if (metadata->headers[i].name.len == n && memcmp(metadata->headers[i].name.data, name, n) == 0) return 1;
    }
    return 0;
}

static s2s_outcome_t probe_on_response_metadata(void *raw, void *state, s2s_call_t *call,
                                                const s2s_metadata_t *metadata) {
    (void)state;
    probe_config_t *config = raw;
    const s2s_host_api_t *api = config->api;
    const char *tag = config->tag[0] ? config->tag : "probe";
    if (metadata->kind == S2S_METADATA_RESPONSE_HEADERS) {
        api->add_header(call, "x-probe-seen-headers", 20, (const uint8_t *)tag, strlen(tag));
        return S2S_OK;
    }
    if (metadata->kind != S2S_METADATA_RESPONSE_TRAILERS) return S2S_OK;
    if (metadata_has(metadata, "x-probe-reject-trailers")) {
        const char *message = "probe rejected the trailers";
        api->set_status(call, 9, message, strlen(message));
        return S2S_REJECTED;
    }
    if (metadata_has(metadata, "x-probe-fail-trailers")) {
        const char *message = "probe failed on the trailers";
        api->set_status(call, 0, message, strlen(message));
        return S2S_ERROR;
    }
    api->add_header(call, "x-probe-trailer", 15, (const uint8_t *)tag, strlen(tag));
    const char *edit = api->set_header(call, "grpc-status", 11, (const uint8_t *)"0", 1) == 0 ? "accepted" : "refused";
    api->set_header(call, "x-probe-status-edit", 19, (const uint8_t *)edit, strlen(edit));
    return S2S_OK;
}

static const s2s_bytes_t *find_header(const s2s_call_info_t *info, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < info->header_count; i++) {
        if (info->headers[i].name.len == n && memcmp(info->headers[i].name.data, name, n) == 0) {
            return &info->headers[i].value;
        }
    }
    return NULL;
}

static s2s_outcome_t probe_call_start(void *raw, s2s_call_t *call, const s2s_call_info_t *info, void **state) {
    probe_config_t *config = raw;
    const s2s_host_api_t *api = config->api;
    const s2s_bytes_t *reject = find_header(info, "x-probe-reject");
    if (reject) {
        char code[8] = {0};
        memcpy(code, reject->data, reject->len < 7 ? reject->len : 7);
        const char *message = "probe rejected the call";
        api->set_status(call, (uint32_t)atoi(code), message, strlen(message));
        return S2S_REJECTED;
    }
    if (find_header(info, "x-probe-error")) {
        const char *message = "probe failed in call_start on purpose";
        api->set_status(call, 0, message, strlen(message));
        return S2S_ERROR;
    }
#ifdef PROBE_BUILD
    if (api->add_header(call, "x-probe-build", strlen("x-probe-build"), (const uint8_t *)PROBE_BUILD,
                        strlen(PROBE_BUILD)) != 0) {
        return S2S_ERROR;
    }
#endif
    if (config->tag[0]) {
        api->add_header(call, "x-probe-chain", 13, (const uint8_t *)config->tag, strlen(config->tag));
    }
    const char *side = info->side == S2S_SIDE_INBOUND ? "inbound" : "outbound";
    api->set_header(call, "x-probe-side", 12, (const uint8_t *)side, strlen(side));
    /* What the plugin was given for a binary and a text header, handed back under other names: a binary value
     * reaches the plugin decoded, and goes out encoded again. */
    const s2s_bytes_t *binary = find_header(info, "x-probe-copy-bin");
    if (binary) api->set_header(call, "x-probe-copied-bin", 18, binary->data, binary->len);
    const s2s_bytes_t *text = find_header(info, "x-probe-copy");
    if (text) api->set_header(call, "x-probe-copied", 14, text->data, text->len);
    *state = calloc(1, sizeof(probe_call_t));
    return S2S_OK;
}

static int starts_with(s2s_bytes_t payload, const char *prefix) {
    size_t n = strlen(prefix);
    return payload.len >= n && memcmp(payload.data, prefix, n) == 0;
}

static int equals(s2s_bytes_t payload, const char *text) {
    return payload.len == strlen(text) && starts_with(payload, text);
}

static s2s_outcome_t probe_on_message(void *raw, void *raw_state, s2s_call_t *call, const s2s_message_t *message) {
    probe_config_t *config = raw;
    probe_call_t *state = raw_state;
    const s2s_host_api_t *api = config->api;
    s2s_bytes_t payload = message->payload;
    api->record_metric(config->host, config->messages_metric, 1);
    int request = message->direction == S2S_DIRECTION_REQUEST;
    if (request) state->requests++; else state->responses++;

    if (starts_with(payload, "upper:")) {
        char *out = malloc(payload.len ? payload.len : 1);
        if (!out) return S2S_ERROR;
        for (size_t i = 0; i < payload.len; i++) out[i] = (char)toupper(payload.data[i]);
        api->set_message(call, (const uint8_t *)out, payload.len);
        free(out);
        return S2S_REPLACED;
    }
    if (equals(payload, "reject")) {
        char text[96];
        int n = snprintf(text, sizeof text, "probe rejected %s message %llu", request ? "request" : "response",
                         (unsigned long long)message->index);
        api->set_status(call, 7 /* PERMISSION_DENIED */, text, (size_t)n);
        return S2S_REJECTED;
    }
    if (equals(payload, "error")) {
        const char *text = "probe failed on purpose";
        api->set_status(call, 0, text, strlen(text));
        return S2S_ERROR;
    }
    if (request && equals(payload, "count")) {
        char text[64];
        int n = snprintf(text, sizeof text, "count=%u%s", state->requests, config->tag);
        api->set_message(call, (const uint8_t *)text, (size_t)n);
        return S2S_REPLACED;
    }
    if (!request && starts_with(payload, "count=") && payload.len < 400) {
        char text[512];
        int n = snprintf(text, sizeof text, "%.*s;resp=%u", (int)payload.len, (const char *)payload.data, state->responses);
        api->set_message(call, (const uint8_t *)text, (size_t)n);
        return S2S_REPLACED;
    }
    if (request && equals(payload, "schema")) {
        char text[64];
        int n = snprintf(text, sizeof text, "schema=%zu", config->schema_bytes);
        api->set_message(call, (const uint8_t *)text, (size_t)n);
        return S2S_REPLACED;
    }
    if (starts_with(payload, "grow:") && payload.len < 20) {
        char digits[16] = {0};
        memcpy(digits, payload.data + 5, payload.len - 5);
        size_t size = (size_t)strtoul(digits, NULL, 10);
        uint8_t *out = malloc(size ? size : 1);
        if (!out) return S2S_ERROR;
        memset(out, 'g', size);
        api->set_message(call, out, size);
        free(out);
        return S2S_REPLACED;
    }
    return S2S_OK;
}

static void probe_call_end(void *raw, void *state, s2s_call_t *call, const s2s_call_end_t *end) {
    (void)call;
    probe_config_t *config = raw;
    probe_call_t *counts = state;
    char line[128];
    int n = snprintf(line, sizeof line, "probe call_end status=%d requests=%u responses=%u", (int)end->grpc_status,
                     counts ? counts->requests : 0, counts ? counts->responses : 0);
    config->api->log(config->host, S2S_LOG_INFO, line, (size_t)n);
    free(state);
}

static const s2s_plugin_api_t probe_api = {
#ifdef PROBE_ABI_1_0
    .struct_size = offsetof(s2s_plugin_api_t, swift_release),
#else
    .struct_size = sizeof(s2s_plugin_api_t),
#endif
    .abi_major = PROBE_ABI_MAJOR,
#ifdef PROBE_ABI_1_0
    .abi_minor = 0,
#else
    .abi_minor = S2S_PLUGIN_ABI_MINOR,
#endif
#ifdef PROBE_BAD_NAME
    .name = "probe plugin!",
#else
    .name = "probe",
#endif
#ifdef PROBE_BUILD
    .version = PROBE_BUILD,
#else
    .version = "0.0.1",
#endif
    .description = "test plugin driven by the traffic it sees",
    .config_new = probe_config_new,
    .config_destroy = probe_config_destroy,
#ifdef PROBE_NEEDS_SCHEMA
    .schema_ready = probe_schema_ready,
#endif
    .wants = probe_wants,
    .call_start = probe_call_start,
    .on_message = probe_on_message,
    .call_end = probe_call_end,
    /* In the 1.0 variant past struct_size: the host must not call it. */
    .on_response_metadata = probe_on_response_metadata,
#if defined(PROBE_SWIFT_RELEASE)
    .swift_release = PROBE_SWIFT_RELEASE,
#elif defined(PROBE_ABI_1_0)
    /* Past the 1.0 struct_size: the host must not read it. */
    .swift_release = "not to be read",
#endif
};

#ifndef PROBE_NO_ENTRY
const s2s_plugin_api_t *s2s_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_major;
    (void)host_abi_minor;
#ifdef PROBE_REFUSE_ENTRY
    fprintf(stderr, "probe: refusing this host on purpose (%p)\n", (const void *)&probe_api);
    return NULL;
#else
    return &probe_api;
#endif
}
#else
const s2s_plugin_api_t *not_the_entry(void) { return &probe_api; }
#endif

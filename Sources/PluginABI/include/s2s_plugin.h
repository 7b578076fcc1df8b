/*
 * s2s-proxy translator plugin ABI.
 *
 * This header is the one contract between the s2s-proxy host and translator plugins (`.so` files loaded at run time).
 * The full per-call and per-message interface arrives with the plugin host; until then it only fixes the version
 * numbers, so that the host can already report which ABI it speaks (`s2s-proxy --version`).
 */
#ifndef S2S_PLUGIN_H
#define S2S_PLUGIN_H

#include <stdint.h>

/* A plugin built for another major version is refused; minor versions add features compatibly. */
#define S2S_PLUGIN_ABI_MAJOR 0
#define S2S_PLUGIN_ABI_MINOR 1

/* The ABI version this host was compiled with, as (major << 16) | minor. */
uint32_t s2s_plugin_host_abi_version(void);

#endif

#include "s2s_plugin.h"

uint32_t s2s_plugin_host_abi_version(void) {
    return ((uint32_t)S2S_PLUGIN_ABI_MAJOR << 16) | (uint32_t)S2S_PLUGIN_ABI_MINOR;
}

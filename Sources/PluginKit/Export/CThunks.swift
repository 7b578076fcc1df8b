// The C function pointers of an exported plugin table.
//
// A `@convention(c)` function cannot capture anything, in particular not the plugin's Swift type. Every hook but
// one receives the opaque config pointer and finds the typed instance through it (`ExportedConfigBox`), so one
// shared set of thunks serves every plugin type. `config_new` receives nothing of the plugin's: it is told which
// type to create by which function pointer the host called. `ExportRegistry` gives each exported type a slot, and
// slot k's table holds `configNewThunks[k]`, which looks up the factory registered for slot k. A shared object
// exports one plugin, so one slot is used in production; the others let tests export several types in one process.

import PluginABI

typealias ConfigNewFunction = @convention(c) (
    UnsafePointer<s2s_host_api_t>?, OpaquePointer?, s2s_bytes_t, UnsafeMutablePointer<CChar>?, Int
) -> UnsafeMutableRawPointer?

enum CThunks {
    static let configNew: [ConfigNewFunction] = [
        { configNew(slot: 0, $0, $1, $2, $3, $4) },
        { configNew(slot: 1, $0, $1, $2, $3, $4) },
        { configNew(slot: 2, $0, $1, $2, $3, $4) },
        { configNew(slot: 3, $0, $1, $2, $3, $4) },
        { configNew(slot: 4, $0, $1, $2, $3, $4) },
        { configNew(slot: 5, $0, $1, $2, $3, $4) },
        { configNew(slot: 6, $0, $1, $2, $3, $4) },
        { configNew(slot: 7, $0, $1, $2, $3, $4) },
        { configNew(slot: 8, $0, $1, $2, $3, $4) },
        { configNew(slot: 9, $0, $1, $2, $3, $4) },
        { configNew(slot: 10, $0, $1, $2, $3, $4) },
        { configNew(slot: 11, $0, $1, $2, $3, $4) },
        { configNew(slot: 12, $0, $1, $2, $3, $4) },
        { configNew(slot: 13, $0, $1, $2, $3, $4) },
        { configNew(slot: 14, $0, $1, $2, $3, $4) },
        { configNew(slot: 15, $0, $1, $2, $3, $4) },
    ]

    private static func configNew(
        slot: Int, _ api: UnsafePointer<s2s_host_api_t>?, _ host: OpaquePointer?, _ options: s2s_bytes_t,
        _ error: UnsafeMutablePointer<CChar>?, _ capacity: Int
    ) -> UnsafeMutableRawPointer? {
        guard let api else {
            ErrorText.store("config_new without a host API table (an ABI violation)", in: error, capacity: capacity)
            return nil
        }
        guard let factory = ExportRegistry.shared.factory(slot: slot) else {
            ErrorText.store("no plugin type is exported in slot \(slot)", in: error, capacity: capacity)
            return nil
        }
        switch factory(HostServices(api), host, options) {
        case .success(let config):
            return config
        case .failure(let failure):
            ErrorText.store(failure.message, in: error, capacity: capacity)
            return nil
        }
    }

    static let configDestroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { config in
        guard let config else { return }
        Unmanaged<ExportedConfigBox>.fromOpaque(config).release()
    }

    static let schemaReady: @convention(c) (UnsafeMutableRawPointer?, s2s_bytes_t, UnsafeMutablePointer<CChar>?, Int)
        -> s2s_outcome_t = { config, schema, error, capacity in
            guard let config else {
                ErrorText.store("schema_ready without a config (an ABI violation)", in: error, capacity: capacity)
                return S2S_ERROR
            }
            return ExportedConfigBox.from(config).hooks.schemaReady(schema, error: error, capacity: capacity)
        }

    static let wants: @convention(c) (UnsafeMutableRawPointer?, s2s_bytes_t, s2s_side_t) -> UInt32 = {
        config, method, side in
        guard let config else { return 0 }
        return ExportedConfigBox.from(config).hooks.wants(method: method, side: side)
    }

    static let callStart: @convention(c) (
        UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_info_t>?,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> s2s_outcome_t = { config, call, info, callState in
        guard let config else { return S2S_ERROR }
        return ExportedConfigBox.from(config).hooks.callStart(call, info, callState)
    }

    static let onMessage: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_message_t>?
    ) -> s2s_outcome_t = { config, callState, call, message in
        guard let config else { return S2S_ERROR }
        return ExportedConfigBox.from(config).hooks.onMessage(callState, call, message)
    }

    static let callEnd: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_end_t>?
    ) -> Void = { config, callState, _, end in
        guard let config else { return }
        ExportedConfigBox.from(config).hooks.callEnd(callState, end)
    }
}

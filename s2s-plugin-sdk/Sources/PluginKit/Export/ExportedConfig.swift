// One chain entry's plugin instance behind the C ABI's opaque config pointer, and the call hooks in C terms.
//
// The host holds `Unmanaged<ExportedConfigBox>` as its `void *config` (retained in config_new, released in
// config_destroy). The box's `hooks` is the typed `ExportedConfig<Plugin>`, which turns each C hook into a call of
// the Swift plugin: it validates what the host passed (a NULL pointer, a length without bytes, an unknown enum
// value becomes S2S_ERROR or "wants nothing", never a trap), catches what the plugin throws, and translates the
// plugin's decision into the ABI's outcome and host calls.
//
// Per-call state: a plugin's `CallState` lives in memory allocated for it in call_start, whose address is the ABI's
// `call_state`; call_end moves the state out and frees it. A plugin with `Void` state allocates nothing: its
// started calls all carry the address of one `Void` kept by the config, so call_end still tells calls that
// proceeded from calls that were rejected.
//
// The call hooks are inlinable, and the box reaches them through closures made in `PluginExport.table`, which is
// inlinable too: so they are compiled into the plugin's own image for its own type (specialized), not run as
// generic code that looks the plugin's types up in the runtime and copies its `CallState` through value witnesses
// on every hook. Configuration-time hooks (schema_ready, wants) go through the protocol, unspecialized.

import PluginABI

/// The configuration-time hooks of one chain entry, independent of the plugin's type.
@usableFromInline
protocol ExportedConfigHooks: AnyObject {
    func schemaReady(_ schema: s2s_bytes_t, error: UnsafeMutablePointer<CChar>?, capacity: Int) -> s2s_outcome_t
    func wants(method: s2s_bytes_t, side: s2s_side_t) -> UInt32
}

/// What the host's `void *config` points at: the entry's hooks, the call hooks as closures specialized for the
/// plugin's type.
@usableFromInline
final class ExportedConfigBox {
    let hooks: any ExportedConfigHooks
    let callStart: (
        OpaquePointer?, UnsafePointer<s2s_call_info_t>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> s2s_outcome_t
    let onMessage: (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_message_t>?) -> s2s_outcome_t
    let callEnd: (UnsafeMutableRawPointer?, UnsafePointer<s2s_call_end_t>?) -> Void
    let onResponseMetadata: (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_metadata_t>?) -> s2s_outcome_t

    @usableFromInline
    init(
        hooks: any ExportedConfigHooks,
        callStart: @escaping (
            OpaquePointer?, UnsafePointer<s2s_call_info_t>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        ) -> s2s_outcome_t,
        onMessage: @escaping (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_message_t>?) -> s2s_outcome_t,
        callEnd: @escaping (UnsafeMutableRawPointer?, UnsafePointer<s2s_call_end_t>?) -> Void,
        onResponseMetadata: @escaping (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_metadata_t>?)
            -> s2s_outcome_t
    ) {
        self.hooks = hooks
        self.callStart = callStart
        self.onMessage = onMessage
        self.callEnd = callEnd
        self.onResponseMetadata = onResponseMetadata
    }

    static func from(_ config: UnsafeMutableRawPointer) -> ExportedConfigBox {
        Unmanaged<ExportedConfigBox>.fromOpaque(config).takeUnretainedValue()
    }
}

@usableFromInline
final class ExportedConfig<Plugin: TranslatorPlugin>: ExportedConfigHooks {
    @usableFromInline let plugin: Plugin
    @usableFromInline let services: HostServices

    /// For a plugin whose state is `Void`: the one `Void` every started call's `call_state` points at (allocated
    /// once, never freed per call); nil otherwise.
    @usableFromInline let voidState: UnsafeMutablePointer<Plugin.CallState>?

    init(plugin: Plugin, services: HostServices) {
        self.plugin = plugin
        self.services = services
        if let void = () as? Plugin.CallState {
            let state = UnsafeMutablePointer<Plugin.CallState>.allocate(capacity: 1)
            state.initialize(to: void)
            voidState = state
        } else {
            voidState = nil
        }
    }

    deinit {
        voidState?.deinitialize(count: 1).deallocate()
    }

    /// Creates the plugin from the host's options and wraps it for the host (`box`, which `PluginExport.table`
    /// makes); the error text on failure.
    static func make(
        services: HostServices, host: OpaquePointer?, options: s2s_bytes_t,
        box: (ExportedConfig<Plugin>) -> ExportedConfigBox
    ) -> Result<UnsafeMutableRawPointer, PluginConfigError> {
        guard let optionBytes = options.buffer else {
            return .failure(PluginConfigError("the host passed options with a length but no bytes (an ABI violation)"))
        }
        do {
            // The ABI promises "{}" for no options; an empty text is taken to mean the same.
            let options = optionBytes.isEmpty ? PluginOptions(members: [:]) : try PluginOptions(json: optionBytes)
            let plugin = try Plugin(options: options, host: PluginHost(services: services, handle: host))
            try options.checkForUnknownKeys()
            return .success(Unmanaged.passRetained(box(ExportedConfig(plugin: plugin, services: services))).toOpaque())
        } catch let error as PluginConfigError {
            return .failure(error)
        } catch {
            return .failure(PluginConfigError(String(describing: error)))
        }
    }

    // MARK: Control-thread hooks

    @usableFromInline
    func schemaReady(
        _ schema: s2s_bytes_t, error buffer: UnsafeMutablePointer<CChar>?, capacity: Int
    ) -> s2s_outcome_t {
        guard let bytes = schema.buffer else {
            ErrorText.store("the host passed a schema with a length but no bytes", in: buffer, capacity: capacity)
            return S2S_ERROR
        }
        do {
            try plugin.schemaReady(bytes)
            return S2S_OK
        } catch {
            ErrorText.store(String(describing: error), in: buffer, capacity: capacity)
            return S2S_ERROR
        }
    }

    @usableFromInline
    func wants(method: s2s_bytes_t, side: s2s_side_t) -> UInt32 {
        guard let method = method.string, let side = CallSide(abi: side) else { return 0 }
        var wants = plugin.wants(method: method, side: side)
        if !wants.isDisjoint(with: [.allMessages, .responseMetadata, .errorTrailers]) {
            wants.insert(.call)
        }
        return wants.intersection([.call, .allMessages, .responseMetadata, .errorTrailers]).rawValue
    }

    // MARK: Call hooks

    @inlinable
    func callStart(
        _ call: OpaquePointer?, _ infoPointer: UnsafePointer<s2s_call_info_t>?,
        _ callState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> s2s_outcome_t {
        guard let infoPointer, let callState else {
            return fail(call, "call_start without call info or call_state (an ABI violation)")
        }
        let info = ReceivedStruct(infoPointer, zeroed: s2s_call_info_t())
        let headerCount = info[\.header_count, or: 0]
        let headerPointer = info[\.headers, or: nil]
        guard let method = info[\.method, or: s2s_bytes_t()].buffer, !method.isEmpty,
            let side = CallSide(abi: info[\.side, or: s2s_side_t(rawValue: 0)]),
            let connection = info[\.connection, or: s2s_bytes_t()].buffer,
            headerCount >= 0, headerCount == 0 || headerPointer != nil
        else {
            return fail(call, "call_start with malformed call info (an ABI violation)")
        }
        let start = CallStart(
            call: call, services: services, method: method, side: side, connection: connection,
            headers: UnsafeBufferPointer(start: headerCount == 0 ? nil : headerPointer, count: headerCount)
        )
        do {
            switch try plugin.startCall(start) {
            case .proceed(with: let state):
                callState.pointee = store(state)
                return S2S_OK
            case .rejected(let code, let message):
                return reject(call, code, message)
            }
        } catch {
            return fail(call, String(describing: error))
        }
    }

    @inlinable
    func onMessage(
        _ callState: UnsafeMutableRawPointer?, _ call: OpaquePointer?, _ messagePointer: UnsafePointer<s2s_message_t>?
    ) -> s2s_outcome_t {
        guard let callState else {
            return fail(call, "on_message for a call that did not proceed (an ABI violation)")
        }
        guard let messagePointer else {
            return fail(call, "on_message without a message (an ABI violation)")
        }
        let received = ReceivedStruct(messagePointer, zeroed: s2s_message_t())
        guard let direction = MessageDirection(abi: received[\.direction, or: s2s_direction_t(rawValue: 0)]),
            let payload = received[\.payload, or: s2s_bytes_t()].buffer,
            let index = Int(exactly: received[\.index, or: 0])
        else {
            return fail(call, "on_message with a malformed message (an ABI violation)")
        }
        let message = MessageView(
            direction: direction, index: index, payload: payload, isCompressed: received[\.compressed, or: 0] != 0
        )
        let decision: MessageDecision
        do {
            // A Void state is the config's shared one; any other is this call's own.
            let state = callState.assumingMemoryBound(to: Plugin.CallState.self)
            decision = try plugin.message(message, state: &state.pointee)
        } catch {
            return fail(call, String(describing: error))
        }
        switch decision {
        case .unchanged:
            return S2S_OK
        case .replaced(let bytes):
            guard let setMessage = services.setMessage else {
                return fail(call, "this host offers no set_message, so a message cannot be replaced")
            }
            let result = bytes.withUnsafeBufferPointer { setMessage(call, $0.baseAddress, $0.count) }
            guard result == 0 else { return fail(call, "the host refused the replacement message") }
            return S2S_REPLACED
        case .rejected(let code, let text):
            return reject(call, code, text)
        }
    }

    @inlinable
    func onResponseMetadata(
        _ callState: UnsafeMutableRawPointer?, _ call: OpaquePointer?, _ metadataPointer: UnsafePointer<s2s_metadata_t>?
    ) -> s2s_outcome_t {
        guard let callState else {
            return fail(call, "on_response_metadata for a call that did not proceed (an ABI violation)")
        }
        guard let metadataPointer else {
            return fail(call, "on_response_metadata without metadata (an ABI violation)")
        }
        let received = ReceivedStruct(metadataPointer, zeroed: s2s_metadata_t())
        let count = received[\.header_count, or: 0]
        let pointer = received[\.headers, or: nil]
        let kind: ResponseMetadata.Kind
        switch received[\.kind, or: s2s_metadata_kind_t(rawValue: 0)] {
        case S2S_METADATA_RESPONSE_HEADERS: kind = .headers
        case S2S_METADATA_RESPONSE_TRAILERS: kind = .trailers
        default: return S2S_OK  // a kind of a later minor version: not ours to read
        }
        guard count == 0 || pointer != nil else {
            return fail(call, "on_response_metadata with malformed metadata (an ABI violation)")
        }
        let metadata = ResponseMetadata(
            call: call, services: services, kind: kind,
            headers: UnsafeBufferPointer(start: count == 0 ? nil : pointer, count: count)
        )
        do {
            let state = callState.assumingMemoryBound(to: Plugin.CallState.self)
            switch try plugin.responseMetadata(metadata, state: &state.pointee) {
            case .proceed:
                return S2S_OK
            case .rejected(let code, let message):
                return reject(call, code, message)
            }
        } catch {
            return fail(call, String(describing: error))
        }
    }

    @inlinable
    func callEnd(_ callState: UnsafeMutableRawPointer?, _ endPointer: UnsafePointer<s2s_call_end_t>?) {
        // NULL: startCall rejected or failed the call, so it has no state and the plugin is not told.
        guard let callState else { return }
        var status: Int? = nil
        if let endPointer {
            let received = ReceivedStruct(endPointer, zeroed: s2s_call_end_t())
            let code = received[\.grpc_status, or: -1]
            status = code < 0 ? nil : Int(code)
        }
        let end = CallEnd(grpcStatus: status)
        let state = callState.assumingMemoryBound(to: Plugin.CallState.self)
        if voidState != nil {
            plugin.endCall(end, state: state.pointee)
        } else {
            let value = state.move()
            state.deallocate()
            plugin.endCall(end, state: value)
        }
    }

    // MARK: Helpers

    @inlinable
    func store(_ state: consuming Plugin.CallState) -> UnsafeMutableRawPointer? {
        if let voidState { return UnsafeMutableRawPointer(voidState) }
        let stored = UnsafeMutablePointer<Plugin.CallState>.allocate(capacity: 1)
        stored.initialize(to: state)
        return UnsafeMutableRawPointer(stored)
    }

    /// Reports a rejection (callStart, message or responseMetadata decided it): the status the client gets, and
    /// S2S_REJECTED.
    @inlinable
    func reject(_ call: OpaquePointer?, _ code: StatusCode, _ message: String) -> s2s_outcome_t {
        services.setStatus(call, code: code.rawValue, message: message)
        return S2S_REJECTED
    }

    /// Reports a failure: the message as the status detail (its code is ignored for S2S_ERROR), and S2S_ERROR.
    @inlinable
    func fail(_ call: OpaquePointer?, _ message: String) -> s2s_outcome_t {
        services.setStatus(call, code: StatusCode.internalError.rawValue, message: message)
        return S2S_ERROR
    }
}

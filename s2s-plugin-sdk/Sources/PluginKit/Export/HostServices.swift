// The host's function table as this SDK reads it: each service present only if the host's table covers it.
//
// Copied once per chain entry in config_new (the host keeps its table valid until config_destroy, but a copy
// makes every later check a nil test). A service the host's `struct_size` does not cover, or whose pointer is
// NULL, is nil here, and every caller treats nil as "not offered".

import PluginABI

@usableFromInline
struct HostServices: @unchecked Sendable {
    typealias Log = @convention(c) (OpaquePointer?, s2s_log_level_t, UnsafePointer<CChar>?, Int) -> Void
    typealias LogEnabled = @convention(c) (OpaquePointer?, s2s_log_level_t) -> Int32
    typealias DefineMetric = @convention(c) (
        OpaquePointer?, s2s_metric_kind_t, UnsafePointer<CChar>?, Int, UnsafePointer<CChar>?, Int
    ) -> UInt32
    typealias RecordMetric = @convention(c) (OpaquePointer?, UInt32, Double) -> Void
    typealias EditHeader = @convention(c) (
        OpaquePointer?, UnsafePointer<CChar>?, Int, UnsafePointer<UInt8>?, Int
    ) -> Int32
    typealias RemoveHeader = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int) -> Int32
    @usableFromInline typealias SetMessage = @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, Int) -> Int32
    typealias SetStatus = @convention(c) (OpaquePointer?, UInt32, UnsafePointer<CChar>?, Int) -> Int32

    let abiMajor: Int
    let abiMinor: Int
    let log: Log?
    let logEnabled: LogEnabled?
    let defineMetric: DefineMetric?
    let recordMetric: RecordMetric?
    let setHeader: EditHeader?
    let addHeader: EditHeader?
    let removeHeader: RemoveHeader?
    @usableFromInline let setMessage: SetMessage?
    let setStatus: SetStatus?

    init(_ table: UnsafePointer<s2s_host_api_t>) {
        let host = ReceivedStruct(table, zeroed: s2s_host_api_t())
        abiMajor = Int(host[\.abi_major, or: 0])
        abiMinor = Int(host[\.abi_minor, or: 0])
        log = host[\.log, or: nil]
        logEnabled = host[\.log_enabled, or: nil]
        defineMetric = host[\.define_metric, or: nil]
        recordMetric = host[\.record_metric, or: nil]
        setHeader = host[\.set_header, or: nil]
        addHeader = host[\.add_header, or: nil]
        removeHeader = host[\.remove_header, or: nil]
        setMessage = host[\.set_message, or: nil]
        setStatus = host[\.set_status, or: nil]
    }

    /// Sets the call's status (for S2S_REJECTED, or the detail of S2S_ERROR); a no-op if the host offers none.
    @usableFromInline
    func setStatus(_ call: OpaquePointer?, code: UInt32, message: String) {
        guard let setStatus else { return }
        var message = message
        _ = message.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                setStatus(call, code, chars.baseAddress, chars.count)
            }
        }
    }
}

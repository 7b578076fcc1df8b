// libFuzzer target: the capture reader of `s2s-proxy replay` (`CaptureReplay.run`, Sources/Host/Plugins) on
// arbitrary text, as capture files are handed around and edited by hand. Reading either throws `ReplayError` (a
// line that is not a record, a connection the config lacks) or gives a report with one entry per call of the
// known connection, in first-appearance order, whose text form can be printed and compared with itself. Built and
// run by scripts/fuzz.

import Foundation

@testable import Host

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let config = ProxyConfig(clusterConnections: [ClusterConnectionConfig(name: "itest")])
    let report: CaptureReplay.Report
    do {
        report = try CaptureReplay.run(
            lines: text.components(separatedBy: "\n"), setup: .empty, config: config, schema: nil, onlyConnection: nil
        )
    } catch let error as CaptureReplay.ReplayError {
        precondition(!error.message.isEmpty, "a capture refused without a reason")
        return 0
    } catch {
        fatalError("the capture reader threw \(type(of: error)): \(error)")
    }
    precondition(Set(report.calls.map(\.id)).count == report.calls.count, "a call reported twice")
    for call in report.calls {
        precondition(call.connection == "itest", "a call of a connection the config lacks: \(call.connection)")
        precondition(call.events.map(\.hook) == ["chain"], "no chain, so no plugin can have run: \(call.events)")
    }
    _ = CaptureReplay.describe(report)
    precondition(CaptureReplay.differences(expected: report, actual: report).isEmpty, "a report differs from itself")
    return 0
}

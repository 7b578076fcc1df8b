// What a health endpoint answers, decided from plain facts (reachability, sessions up, schema states) so the rules
// can be tested without sockets. Owns `HealthVerdict` and the wording of every "what is missing" line; it probes
// nothing itself (ClusterConnectionStatus gathers the facts).

/// The answer of one health endpoint of one cluster connection: healthy when nothing is missing.
struct HealthVerdict: Sendable, Equatable {
    /// Which check: the local Temporal side or the remote side.
    enum Check: String, Sendable {
        case local
        case remote
    }

    var check: Check
    /// The cluster connection's `name`.
    var connection: String
    /// One line per unmet requirement; empty when healthy.
    var missing: [String]

    var isHealthy: Bool { missing.isEmpty }

    /// 200 when healthy, 503 otherwise (a load balancer takes the replica out of rotation).
    var statusCode: Int { isHealthy ? 200 : 503 }

    /// `OK`, or the connection, the check and what is missing, one item per line.
    var body: String {
        if isHealthy { return "OK\n" }
        return "connection \(connection): \(check.rawValue) cluster not ready\n"
            + missing.map { "- \($0)\n" }.joined()
    }

    /// The line for an upstream that could not be reached, or nil when `probeFailure` is nil.
    static func unreachable(_ role: String, probeFailure: String?) -> String? {
        probeFailure.map { "\(role) is not reachable: \($0)" }
    }

    /// The line for a mux tunnel with fewer than one session up, or nil when at least one is.
    ///
    /// One session is enough: every call can be carried by any session, so more sessions add capacity, not
    /// reachability.
    static func muxSessions(up: Int, wanted: Int, address: String) -> String? {
        up >= 1 ? nil : "no mux session to the peer proxy (\(address)) is up (0 of \(wanted))"
    }

    /// The lines for plugin entries still waiting for (or refused) the Temporal schema.
    static func schema(_ entries: [(label: String, state: PluginEntry.SchemaState)]) -> [String] {
        entries.compactMap { label, state in
            switch state {
            case .notNeeded, .ready: return nil
            case .pending(let reason): return "the Temporal schema for \(label) is not loaded yet: \(reason)"
            case .failed(let reason): return "the Temporal schema for \(label) could not be loaded: \(reason)"
            }
        }
    }
}

// Which log lines go out: the rate limits and silencing of `logging.throttleMaxRPS` and `logConfigs.<component>`,
// and the count of what they dropped.
//
// Owns `LogLimits`, one per process, shared by every logger (ProxyLogHandler asks it once per line that passes the
// level check). Each component has a policy: silenced (`disabled: true`), its own token bucket (its
// `throttleMaxRPS`, else the Go proxy's default for it), or the root bucket (`logging.throttleMaxRPS`) shared with
// the lines of no component; no root limit means no limit. Unlike the Go proxy, a component without settings of
// its own is held to the root limit, not left unthrottled. Error and critical lines are never dropped for rate,
// only by `disabled`. A reload replaces the policies in place (`apply`), so loggers made before it follow the new
// limits. Drops are counted per component: the next line of that component that passes is preceded by a line
// saying how many, `takeUnreportedDrops` hands the rest to a periodic report, and the totals feed the metrics.

import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's log rate limits and silenced components.
public final class LogLimits: Sendable {
    /// What happens to one line.
    public enum Admission: Equatable, Sendable {
        /// Write it; first say that `droppedBefore` lines of its component were dropped (0: say nothing).
        case write(droppedBefore: Int)
        /// Drop it.
        case drop
    }

    /// Drops counted for one component (nil: lines of no component), for reports and metrics.
    public struct DropCount: Equatable, Sendable {
        public var component: LogComponent?
        /// Lines dropped by a rate limit.
        public var rateLimited: Int
        /// Lines dropped because the component is disabled.
        public var silenced: Int
    }

    /// A token bucket of `rate` lines per second, holding at most `max(1, rate)` (so a rate under 1 still lets a
    /// line through now and then).
    private struct Bucket {
        let rate: Double
        var tokens: Double
        var last: Double

        init(rate: Double, now: Double) {
            self.rate = rate
            tokens = max(1, rate)
            last = now
        }

        mutating func take(now: Double) -> Bool {
            tokens = min(max(1, rate), tokens + max(0, now - last) * rate)
            last = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    /// How one component's lines are treated.
    private enum Policy {
        case silenced
        case own(Bucket, limit: String)
        case root
    }

    private struct State {
        var root: Bucket?
        var rootLimit = ""
        /// By `LogComponent.rawValue`.
        var policies: [Policy]
        /// By `LogComponent.rawValue`, then one slot for lines of no component.
        var unreported: [Int]
        var rateLimited: [Int]
        var silenced: [Int]
    }

    private let state: NIOLockedValueBox<State>
    private let now: @Sendable () -> Double
    private static let slots = LogComponent.allCases.count + 1

    /// The limits `logging` and `logConfigs` ask for; `now` is a monotonic clock in seconds (tests pass their own).
    public init(
        logging: LoggingConfig?, logConfigs: [String: LoggingConfig],
        now: @escaping @Sendable () -> Double = { LogLimits.monotonicSeconds() }
    ) {
        self.now = now
        state = NIOLockedValueBox(State(
            policies: [], unreported: Array(repeating: 0, count: Self.slots),
            rateLimited: Array(repeating: 0, count: Self.slots), silenced: Array(repeating: 0, count: Self.slots)
        ))
        apply(logging: logging, logConfigs: logConfigs)
    }

    /// Replaces every policy (a reload); buckets whose rate is new start full, drop counts carry on.
    public func apply(logging: LoggingConfig?, logConfigs: [String: LoggingConfig]) {
        let time = now()
        let rootRate = logging?.throttleMaxRPS.flatMap { $0 > 0 ? $0 : nil }
        let policies = LogComponent.allCases.map { component -> Policy in
            let settings = logConfigs[component.name]
            if settings?.disabled == true { return .silenced }
            if let rate = settings?.throttleMaxRPS, rate > 0 {
                return .own(
                    Bucket(rate: rate, now: time),
                    limit: "logConfigs.\(component.name).throttleMaxRPS (\(Self.rateText(rate)))"
                )
            }
            if let rate = component.defaultLinesPerSecond {
                return .own(
                    Bucket(rate: rate, now: time),
                    limit: "the default limit of \(component.name) (\(Self.rateText(rate)); "
                        + "logConfigs.\(component.name).throttleMaxRPS changes it)"
                )
            }
            return .root
        }
        state.withLockedValue { state in
            state.root = rootRate.map { Bucket(rate: $0, now: time) }
            state.rootLimit = rootRate.map { "logging.throttleMaxRPS (\(Self.rateText($0)))" } ?? ""
            state.policies = policies
        }
    }

    /// Decides whether a line of `component` at `level` goes out, and counts it if not.
    public func admit(_ component: LogComponent?, level: Logger.Level) -> Admission {
        let slot = component?.rawValue ?? Self.slots - 1
        let time = now()
        return state.withLockedValue { state in
            let passes: Bool
            switch component.map({ state.policies[$0.rawValue] }) ?? .root {
            case .silenced:
                state.silenced[slot] += 1
                return .drop
            case .own(var bucket, let limit):
                passes = level >= .error || bucket.take(now: time)
                state.policies[slot] = .own(bucket, limit: limit)
            case .root:
                if level >= .error || state.root == nil {
                    passes = true
                } else {
                    passes = state.root!.take(now: time)
                }
            }
            guard passes else {
                state.rateLimited[slot] += 1
                state.unreported[slot] += 1
                return .drop
            }
            defer { state.unreported[slot] = 0 }
            return .write(droppedBefore: state.unreported[slot])
        }
    }

    /// The line that reports `count` dropped lines of `component`, naming the limit that dropped them.
    public func dropNotice(_ count: Int, component: LogComponent?) -> String {
        let limit = state.withLockedValue { state -> String in
            if let component, case .own(_, let limit) = state.policies[component.rawValue] { return limit }
            return state.rootLimit.isEmpty ? "a limit since removed by a reload" : state.rootLimit
        }
        let whose = component.map { " of \($0.name)" } ?? ""
        return "\(count) log lines\(whose) dropped by \(limit)"
    }

    /// The drops not yet reported by a line that passed, per component; they count as reported from now on.
    public func takeUnreportedDrops() -> [(component: LogComponent?, count: Int)] {
        state.withLockedValue { state in
            var drops: [(component: LogComponent?, count: Int)] = []
            for slot in 0..<Self.slots where state.unreported[slot] > 0 {
                drops.append((LogComponent(rawValue: slot), state.unreported[slot]))
                state.unreported[slot] = 0
            }
            return drops
        }
    }

    /// Every component's drops since start, for components that dropped any.
    public func dropTotals() -> [DropCount] {
        state.withLockedValue { state in
            (0..<Self.slots).compactMap { slot in
                guard state.rateLimited[slot] > 0 || state.silenced[slot] > 0 else { return nil }
                return DropCount(
                    component: LogComponent(rawValue: slot), rateLimited: state.rateLimited[slot],
                    silenced: state.silenced[slot]
                )
            }
        }
    }

    /// `3/s`, `0.05/s`.
    private static func rateText(_ rate: Double) -> String {
        rate == rate.rounded() && rate < 1e15 ? "\(Int(rate))/s" : "\(rate)/s"
    }

    /// Seconds on the monotonic clock.
    public static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

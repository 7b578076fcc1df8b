// KeyValueArgument: a `KEY=VALUE` command-line argument, as `s2s-bench load --header` and
// `s2s-bench echo-server --response-file` take them. It only splits the text; each command checks the key and
// value for its own meaning.

import ArgumentParser

/// One `KEY=VALUE` argument, split at the first `=`; the key must not be empty, the value may.
struct KeyValueArgument: ExpressibleByArgument, Sendable, Equatable {
    let key: String
    let value: String

    init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
            return nil
        }
        self.key = String(argument[..<equals])
        self.value = String(argument[argument.index(after: equals)...])
    }
}

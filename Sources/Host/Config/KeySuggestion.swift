// "Did you mean ...?" for misspelt configuration keys and values.
//
// Owns `KeySuggestion`: picks the known spelling closest to what was written. Pure string logic; it does not
// know the configuration schema.

/// Finds the intended spelling of a misspelt key among the keys that are valid at that place.
enum KeySuggestion {
    /// The candidate that `written` most likely meant, or nil when none is close.
    ///
    /// A candidate is close when it differs only in letter case, or when few single-character edits
    /// (case-insensitive) turn one into the other: at most 1 for words of up to 4 characters, 2 up to 8, 3 beyond.
    static func closest(to written: String, among candidates: [String]) -> String? {
        let lowered = written.lowercased()
        if let sameLetters = candidates.first(where: { $0.lowercased() == lowered }) {
            return sameLetters
        }
        let allowedEdits = lowered.count <= 4 ? 1 : (lowered.count <= 8 ? 2 : 3)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            if distance <= allowedEdits, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// Levenshtein distance: the fewest single-character insertions, deletions or substitutions from `a` to `b`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let source = Array(a)
        let target = Array(b)
        if source.isEmpty { return target.count }
        if target.isEmpty { return source.count }
        var previousRow = Array(0...target.count)
        var currentRow = [Int](repeating: 0, count: target.count + 1)
        for sourceIndex in 1...source.count {
            currentRow[0] = sourceIndex
            for targetIndex in 1...target.count {
                let substitutionCost = source[sourceIndex - 1] == target[targetIndex - 1] ? 0 : 1
                currentRow[targetIndex] = Swift.min(
                    previousRow[targetIndex] + 1,
                    currentRow[targetIndex - 1] + 1,
                    previousRow[targetIndex - 1] + substitutionCost
                )
            }
            swap(&previousRow, &currentRow)
        }
        return previousRow[target.count]
    }
}

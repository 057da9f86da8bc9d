extension FlatJSONObject {
    /// Walks the elements of an array that an earlier read checked (a member's
    /// ``Member/range``), one at a time, so that a caller reading an element itself does not
    /// step over it first: ``next()`` gives where an element starts; the caller then says where
    /// it ended (``finishElement(endingAt:)``) or has it stepped over (``skipElement()``).
    ///
    /// ``elements(ofArrayIn:_:)`` steps over every element to list them; a batch's thousand
    /// items were then each read again.
    package struct ElementCursor {
        private let bytes: [UInt8]
        /// Where the array's text ends.
        private let end: Int
        private var index: Int
        /// Where the element ``next()`` gave starts, until it is finished or skipped.
        private var current: Int?
        private var done = false

        /// A cursor over the array that `range` of `bytes` holds; `nil` when it holds another value.
        package init?(arrayIn bytes: [UInt8], _ range: Range<Int>) {
            self.bytes = bytes
            end = min(range.upperBound, bytes.count)
            index = max(range.lowerBound, 0)
            skipWhitespace()
            guard index < end, bytes[index] == UInt8(ascii: "[") else { return nil }
            index += 1
            skipWhitespace()
            if index < end, bytes[index] == UInt8(ascii: "]") {
                done = true
                isComplete = true
            }
        }

        /// Where the next element starts; `nil` after the last (or when the bytes are not an
        /// array as checked: ``isComplete`` then says so). The element before must have been
        /// finished or skipped.
        package mutating func next() -> Int? {
            guard !done, current == nil else { return nil }
            skipWhitespace()
            guard index < end else {
                done = true
                return nil
            }
            current = index
            return index
        }

        /// Ends the current element at `elementEnd`, where the caller's read of it stopped.
        package mutating func finishElement(endingAt elementEnd: Int) {
            guard current != nil, elementEnd <= end else {
                done = true
                return
            }
            index = elementEnd
            current = nil
            afterElement()
        }

        /// Steps over the current element; returns where it lies.
        package mutating func skipElement() -> Range<Int>? {
            guard let start = current,
                let elementEnd = bytes.withUnsafeBytes({ JSONValidator.end(ofValidatedValueAt: start, in: $0) }),
                elementEnd > start, elementEnd <= end
            else {
                done = true
                return nil
            }
            index = elementEnd
            current = nil
            afterElement()
            return start..<elementEnd
        }

        /// Whether the walk reached the array's closing bracket (and so saw every element).
        package private(set) var isComplete = false

        private mutating func afterElement() {
            skipWhitespace()
            guard index < end else {
                done = true
                return
            }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                done = true
                isComplete = true
            default: done = true
            }
        }

        private mutating func skipWhitespace() {
            while index < end, isWhitespace(bytes[index]) { index += 1 }
        }
    }
}

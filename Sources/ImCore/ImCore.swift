/// ImCore is what nodes and helpers share on top of the plugin SDK: bus envelopes and their
/// codec, subjects, connect tokens and JSON readers. It re-exports ``ImBackplane`` (the
/// protocols, identifiers and the memory backplane), so code that imports ImCore sees both.
@_exported public import ImBackplane

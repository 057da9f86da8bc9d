/// ImTesting holds what tests of a whole node need: an in-process cluster, a WebSocket test
/// client, local server processes and fuzzing loops. It re-exports ``ImBackplaneTesting``, the
/// conformance kit plugins run.
@_exported public import ImBackplaneTesting

//! Worker processes from a test binary, where `main` is the test harness's.

/// Defines a test named `$name` that makes the test binary a worker for
/// `$dsp` when the supervisor started it as one (and passes otherwise).
/// Spawn workers with [`crate::WorkerCommand::current_test`]`("$name")`:
///
/// ```ignore
/// chronus_worker::worker_test_entry!(chronus_worker_entry, my_crate::MyDsp);
///
/// #[test]
/// fn my_dsp_is_deterministic() {
///     let cmd = chronus_worker::WorkerCommand::current_test("chronus_worker_entry").unwrap();
///     // … check it with chronus::determinism::check(…, cmd, …)
/// }
/// ```
#[macro_export]
macro_rules! worker_test_entry {
    ($name:ident, $dsp:ty) => {
        #[test]
        fn $name() {
            $crate::init::<$dsp>();
        }
    };
}

// The attribute's arguments.

#[epitome::main(threads = 2)]
async fn main() {}

#[epitome::test(flavor = "work_stealing")]
async fn bad_flavor() {}

#[epitome::test(flavor = multi_reactor)]
async fn flavor_not_a_string() {}

#[epitome::test(flavor = "multi_reactor", reactors = 0)]
async fn no_reactor() {}

#[epitome::test(flavor = "multi_reactor", reactors = "two")]
async fn reactors_not_a_number() {}

#[epitome::test(reactors = 2)]
async fn reactors_on_a_current_thread_test() {}

#[epitome::test(flavor = "current_thread", worker_threads = 2)]
async fn worker_threads_on_current_thread() {}

#[epitome::test(flavor = "multi_reactor", reactors = 2, worker_threads = 2)]
async fn count_twice() {}

#[epitome::test(start_paused = true)]
async fn tokio_only_argument() {}

#[epitome::test(crate = "not a path")]
async fn bad_crate_path() {}

#[epitome::test(flavor)]
async fn missing_value() {}

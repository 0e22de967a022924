"""Task runners: the bounded pool used in production and the immediate one used in tests."""

import threading

from fiwareglancesync.app.runner import ImmediateRunner, ThreadPoolRunner


def test_immediate_runner_runs_in_the_caller_thread():
    seen = []

    ImmediateRunner().submit(lambda: seen.append(threading.current_thread()))

    assert seen == [threading.current_thread()]


def test_pool_never_runs_more_tasks_at_once_than_its_bound():
    runner = ThreadPoolRunner(max_workers=2)
    lock = threading.Lock()
    release = threading.Event()
    running = {"now": 0, "max": 0}
    started = threading.Semaphore(0)
    done = threading.Semaphore(0)

    def work():
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        started.release()
        release.wait(10)
        with lock:
            running["now"] -= 1
        done.release()

    for _ in range(5):
        runner.submit(work)
    assert started.acquire(timeout=10) and started.acquire(timeout=10)
    assert not started.acquire(timeout=0.2)  # the third waits for a free worker
    release.set()
    for _ in range(5):
        assert done.acquire(timeout=10)
    runner.shutdown()

    assert running["max"] == 2


def test_pool_runs_tasks_outside_the_caller_thread_and_survives_a_crash(caplog):
    runner = ThreadPoolRunner(max_workers=1)
    threads = []

    def crash():
        raise RuntimeError("bug")

    runner.submit(crash)
    runner.submit(lambda: threads.append(threading.current_thread()))
    runner.shutdown(wait=True)

    assert threads and threads[0] is not threading.current_thread()
    assert threads[0].name.startswith("glancesync-task")
    assert "background task crashed" in caplog.text

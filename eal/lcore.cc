#include "eal/lcore.h"

#include <pthread.h>
#include <sched.h>

#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "eal/internal/lcores.h"

namespace keel::eal_internal {
// Declared in lcore.h so LcoreId() inlines into fast paths.
__thread unsigned t_lcore_id = eal::kLcoreIdAny;
}  // namespace keel::eal_internal

namespace keel::eal {
namespace {

using eal_internal::t_lcore_id;

// One worker lcore: a pinned thread that runs launched functions one at a time.
struct Worker {
  unsigned id = 0;
  std::thread thread;
  absl::Mutex mu;
  std::function<int()> fn ABSL_GUARDED_BY(mu);
  bool has_work ABSL_GUARDED_BY(mu) = false;  // fn launched, not yet taken by the thread
  bool stop ABSL_GUARDED_BY(mu) = false;
  LcoreState state ABSL_GUARDED_BY(mu) = LcoreState::kIdle;
  int result ABSL_GUARDED_BY(mu) = 0;

  void Run() {
    t_lcore_id = id;
    while (true) {
      std::function<int()> work;
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(
            +[](Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->has_work || w->stop; },
            this));
        if (!has_work) return;  // stop
        work = std::move(fn);
        has_work = false;
      }
      const int r = work();
      absl::MutexLock lock(&mu);
      result = r;
      state = LcoreState::kFinished;
    }
  }
};

// Process-local; written by StartLcores/StopLcores on the main thread while no worker
// runs user code, read by the launch/wait calls from the main lcore.
struct LcoreTable {
  unsigned main = kLcoreIdAny;
  std::map<unsigned, CpuSet> all;
  std::map<unsigned, std::unique_ptr<Worker>> workers;
  cpu_set_t original_affinity;
};
LcoreTable* g_lcores = nullptr;

Worker* FindWorker(unsigned lcore) {
  if (g_lcores == nullptr) return nullptr;
  auto it = g_lcores->workers.find(lcore);
  return it == g_lcores->workers.end() ? nullptr : it->second.get();
}

cpu_set_t ToCpuSet(const CpuSet& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned cpu = 0; cpu < kMaxCpus && cpu < CPU_SETSIZE; ++cpu) {
    if (cpus.test(cpu)) CPU_SET(cpu, &set);
  }
  return set;
}

}  // namespace


unsigned MainLcore() { return g_lcores == nullptr ? kLcoreIdAny : g_lcores->main; }

std::vector<unsigned> Lcores() {
  std::vector<unsigned> ids;
  if (g_lcores != nullptr) {
    for (const auto& [id, cpus] : g_lcores->all) ids.push_back(id);
  }
  return ids;
}

std::vector<unsigned> WorkerLcores() {
  std::vector<unsigned> ids;
  if (g_lcores != nullptr) {
    for (const auto& [id, worker] : g_lcores->workers) ids.push_back(id);
  }
  return ids;
}

bool IsLcoreEnabled(unsigned lcore) {
  return g_lcores != nullptr && g_lcores->all.count(lcore) != 0;
}

LcoreState GetLcoreState(unsigned lcore) {
  Worker* w = FindWorker(lcore);
  if (w == nullptr) return LcoreState::kIdle;
  absl::MutexLock lock(&w->mu);
  return w->state;
}

absl::Status RemoteLaunch(std::function<int()> fn, unsigned lcore) {
  Worker* w = FindWorker(lcore);
  if (w == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("lcore %u is not a worker lcore of this process", lcore));
  }
  absl::MutexLock lock(&w->mu);
  if (w->state != LcoreState::kIdle) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "lcore %u is busy (%s); WaitLcore() it first", lcore,
        w->state == LcoreState::kRunning ? "running" : "finished, not yet waited for"));
  }
  w->fn = std::move(fn);
  w->has_work = true;
  w->state = LcoreState::kRunning;
  return absl::OkStatus();
}

absl::Status LaunchOnAllWorkers(const std::function<int()>& fn, CallMain call_main) {
  for (unsigned lcore : WorkerLcores()) {
    if (GetLcoreState(lcore) != LcoreState::kIdle) {
      return absl::FailedPreconditionError(
          absl::StrFormat("lcore %u is busy; WaitAllLcores() first", lcore));
    }
  }
  for (unsigned lcore : WorkerLcores()) {
    if (absl::Status s = RemoteLaunch(fn, lcore); !s.ok()) return s;
  }
  if (call_main == CallMain::kCall) fn();
  return absl::OkStatus();
}

int WaitLcore(unsigned lcore) {
  Worker* w = FindWorker(lcore);
  if (w == nullptr) return 0;
  absl::MutexLock lock(&w->mu);
  w->mu.Await(absl::Condition(
      +[](Worker* worker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(worker->mu) {
        return worker->state != LcoreState::kRunning;
      },
      w));
  if (w->state == LcoreState::kIdle) return 0;
  w->state = LcoreState::kIdle;
  return w->result;
}

void WaitAllLcores() {
  for (unsigned lcore : WorkerLcores()) WaitLcore(lcore);
}

}  // namespace keel::eal

namespace keel::eal_internal {

using eal::CpuSet;

absl::Status StartLcores(const eal::Options& options) {
  auto lcores = std::make_unique<eal::LcoreTable>();
  lcores->main = options.main_lcore;
  lcores->all = options.lcores;
  pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), &lcores->original_affinity);
  auto pin = [](pthread_t thread, unsigned lcore, const CpuSet& cpus) -> absl::Status {
    const cpu_set_t set = eal::ToCpuSet(cpus);
    const int rc = pthread_setaffinity_np(thread, sizeof(set), &set);
    if (rc == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot pin lcore %u to CPUs %s: %s", lcore, eal::FormatCpuSet(cpus), strerror(rc)));
  };
  const auto main = options.lcores.find(options.main_lcore);
  if (main == options.lcores.end()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--main-lcore %u is not one of the process's lcores", options.main_lcore));
  }
  if (absl::Status s = pin(pthread_self(), options.main_lcore, main->second); !s.ok()) return s;
  eal_internal::t_lcore_id = options.main_lcore;
  eal::g_lcores = lcores.release();
  for (const auto& [id, cpus] : options.lcores) {
    if (id == options.main_lcore) continue;
    auto worker = std::make_unique<eal::Worker>();
    worker->id = id;
    eal::Worker* w = worker.get();
    worker->thread = std::thread([w] { w->Run(); });
    char name[16];
    absl::SNPrintF(name, sizeof(name), "keel-lcore-%u", id);
    pthread_setname_np(worker->thread.native_handle(), name);
    const absl::Status pinned = pin(worker->thread.native_handle(), id, cpus);
    eal::g_lcores->workers[id] = std::move(worker);
    if (!pinned.ok()) {
      StopLcores().IgnoreError();
      return pinned;
    }
  }
  return absl::OkStatus();
}

absl::Status StopLcores() {
  eal::LcoreTable* lcores = eal::g_lcores;
  if (lcores == nullptr) return absl::OkStatus();
  for (const auto& [id, w] : lcores->workers) {
    absl::MutexLock lock(&w->mu);
    if (w->state == eal::LcoreState::kRunning) {
      return absl::FailedPreconditionError(
          absl::StrFormat("lcore %u is still running; WaitAllLcores() first", id));
    }
  }
  for (const auto& [id, w] : lcores->workers) {
    {
      absl::MutexLock lock(&w->mu);
      w->stop = true;
    }
    w->thread.join();
  }
  pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &lcores->original_affinity);
  eal_internal::t_lcore_id = eal::kLcoreIdAny;
  eal::g_lcores = nullptr;
  delete lcores;
  return absl::OkStatus();
}

}  // namespace keel::eal_internal

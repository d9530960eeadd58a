// p2pnode sweep FILE: a grid of runs with one results table; p2pnode plot DIR: its figures
// (or a single run's), drawn by matplotlib from Debian's python3-matplotlib.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <spawn.h>

#include <fmt/format.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/config/sweep.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/sweep.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode_version.h"

extern char** environ;

namespace p2p::cli {

void add_sweep_commands(CLI::App& app, SweepFlags& sweep, PlotFlags& plot) {
    CLI::App* s = app.add_subcommand(
        "sweep", "Run a grid of experiments (a field given as a list is an axis) and write a results table and figures");
    s->add_option("file", sweep.file, "Sweep file: an experiment file whose list values are axes, with config/nodes, "
                                      "seeds and exclude")
        ->required();
    s->add_option("--out", sweep.out, "Folder for the runs, results.csv/json, summary.md and the figures (default: "
                                      "sweeps/<file name>)");
    s->add_option("--jobs", sweep.jobs, "Runs at a time (0: the cores / the nodes of a run, at least 1)")
        ->check(CLI::Range(0, 256));
    s->add_flag("--dry-run", sweep.dry_run, "Print the grid (and what would be skipped) and run nothing");
    s->add_flag("--force", sweep.force, "Use --out even if it holds another sweep");
    s->add_flag("--no-plot", sweep.no_plot, "Do not draw the figures at the end");
    CLI::App* p = app.add_subcommand("plot", "Draw a sweep's figures, or a run's per-node curves, with matplotlib");
    p->add_option("dir", plot.dir, "A sweep's --out folder, or a run's metrics folder (node-<id>.jsonl)")->required();
    p->add_option("--format", plot.format, "png, svg or both")->check(CLI::IsMember({"png", "svg", "both"}));
}

int run_sweep_command(const SweepFlags& f) {
    const SweepSpec spec = load_sweep(f.file);
    for (const auto& w : spec.nodes.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const auto points = expand_sweep(spec);
    if (f.dry_run) {
        std::printf("%s", launch::describe_grid(spec, points).c_str());
        return 0;
    }
    launch::SweepOptions o;
    o.out = f.out.empty() ? "sweeps/" + std::filesystem::path(f.file).stem().string() : f.out;
    o.jobs = f.jobs;
    o.force = f.force;
    o.version = P2PNODE_VERSION;
    o.progress_tty = isatty(STDERR_FILENO) != 0;
    o.stop_requested = [] { return g_stop.load(); };
    install_stop_handlers();
    nn::set_blas_threads(1);
    const auto rows = launch::run_sweep(spec, f.file, points, o);
    std::size_t done = 0, failed = 0, skipped = 0, other = 0;
    for (const auto& r : rows) {
        if (r.status == "done") ++done;
        else if (r.status == "failed") ++failed;
        else if (r.status == "skipped") ++skipped;
        else ++other;
    }
    std::printf("sweep: %zu done, %zu failed, %zu skipped, %zu not finished; %s/results.csv, %s/summary.md\n", done,
                failed, skipped, other, o.out.c_str(), o.out.c_str());
    if (!f.no_plot && done > 0) {
        PlotFlags plot;
        plot.dir = o.out;
        if (run_plot(plot) != 0) std::fprintf(stderr, "sweep: the figures were not drawn (see above)\n");
    }
    if (g_stop.load()) return 0;
    return failed ? kExitRuntime : 0;
}

int run_plot(const PlotFlags& f) {
    std::string script;
    const char* env = std::getenv("P2PNODE_PLOT");
    for (const char* c : {env, P2PNODE_PLOT_INSTALLED, P2PNODE_PLOT_SOURCE})
        if (c && *c && std::filesystem::is_regular_file(c)) {
            script = c;
            break;
        }
    if (script.empty()) throw IoError("plot: cannot find plot.py (installed under share/p2pnode, or tools/ in the source)");
    if (!std::filesystem::is_directory(f.dir)) throw ConfigError(fmt::format("plot: {}: not a folder", f.dir));
    const std::string python = "/usr/bin/python3";
    std::vector<std::string> args{python, script, f.dir, "--format", f.format};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
        throw IoError("plot: cannot run /usr/bin/python3 (apt-get install python3-matplotlib)");
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : kExitRuntime;
}

}  // namespace p2p::cli

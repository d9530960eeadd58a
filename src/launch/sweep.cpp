#include "p2pnode/launch/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode/robust/robust.hpp"

namespace p2p::launch {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

void write_whole(const fs::path& path, const std::string& text) { launch::write_whole(path.string(), text); }

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string json_text(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

// status.json: the row of a finished (or failed, skipped) run.
std::string row_json(const SweepRow& r) {
    std::string at;
    for (const auto& [k, v] : r.at) at += fmt::format("{}{}: {}", at.empty() ? "" : ", ", json_text(k), json_text(v));
    return fmt::format(
        "{{\"name\": {}, \"group\": {}, \"status\": {}, \"at\": {{{}}}, \"seed\": {}, \"acc_mean\": {}, "
        "\"acc_worst\": {}, \"acc_best\": {}, \"loss_mean\": {}, \"rounds\": {}, \"seconds\": {}, "
        "\"bytes_per_node_round\": {}, \"aggregate_ms_round\": {}, \"gap_uniform\": {}, \"gap_metropolis\": {}, "
        "\"byzantine_neighbours_max\": {}, \"error\": {}}}",
        json_text(r.name), json_text(r.group), json_text(r.status), at, r.seed, number(r.acc_mean),
        number(r.acc_worst), number(r.acc_best), number(r.loss_mean), r.rounds, number(r.seconds),
        number(r.bytes_per_node_round), number(r.aggregate_ms_round), number(r.gap_uniform), number(r.gap_metropolis),
        r.byzantine_neighbours_max, json_text(r.error));
}

// A status.json written by row_json, or nullopt when there is none or it does not parse.
std::optional<SweepRow> read_row(const fs::path& p) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) return std::nullopt;
    try {
        const YAML::Node n = YAML::LoadFile(p.string());
        SweepRow r;
        r.name = n["name"].as<std::string>();
        r.group = n["group"].as<std::string>();
        r.status = n["status"].as<std::string>();
        for (auto it = n["at"].begin(); it != n["at"].end(); ++it)
            r.at.emplace_back(it->first.as<std::string>(), it->second.as<std::string>());
        r.seed = n["seed"].as<std::uint64_t>();
        auto num = [&](const char* k) { return n[k] && !n[k].IsNull() ? n[k].as<double>() : NAN; };
        r.acc_mean = num("acc_mean");
        r.acc_worst = num("acc_worst");
        r.acc_best = num("acc_best");
        r.loss_mean = num("loss_mean");
        r.rounds = n["rounds"].as<int>();
        r.seconds = num("seconds");
        r.bytes_per_node_round = num("bytes_per_node_round");
        r.aggregate_ms_round = num("aggregate_ms_round");
        r.gap_uniform = num("gap_uniform");
        r.gap_metropolis = num("gap_metropolis");
        r.byzantine_neighbours_max = n["byzantine_neighbours_max"] ? n["byzantine_neighbours_max"].as<int>() : 0;
        r.error = n["error"].as<std::string>();
        return r;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

SweepRow blank_row(const SweepPoint& p) {
    SweepRow r;
    r.name = p.name;
    r.group = p.group;
    r.at = p.at;
    r.seed = p.seed;
    r.acc_mean = r.acc_worst = r.acc_best = r.loss_mean = NAN;
    r.seconds = r.bytes_per_node_round = r.aggregate_ms_round = NAN;
    r.gap_uniform = r.gap_metropolis = NAN;
    return r;
}

// Every node's settings, or why the point cannot run (a rule's bound, a topology).
std::string unrunnable(const SweepSpec& spec, const Experiment& e) {
    try {
        node::settings_for_all(spec.nodes, e);
    } catch (const robust::RobustError& ex) {
        return ex.what();
    } catch (const ConfigError& ex) {
        return ex.what();
    }
    return {};
}

std::string data_root(const Experiment& e) { return e.data.root == "auto" ? data::default_data_root() : e.data.root; }

// The nodes a run had (id, type, host, port, one a line): a finished run is reused only for the same.
std::string nodes_text(const NodesConfig& cfg) {
    std::string out;
    for (const auto& n : cfg.nodes)
        out += fmt::format("{} {} {} {}\n", n.id, to_string(n.type), n.host, n.port);
    return out;
}

// A point's experiment as its run folder holds it: its outputs in the folder.
Experiment run_experiment(const SweepPoint& p, const fs::path& dir) {
    Experiment e = p.experiment;
    e.outputs.metrics_dir = dir.string();
    if (!e.outputs.checkpoint_dir.empty()) e.outputs.checkpoint_dir = (dir / "ck").string();
    return e;
}

// One point, start to end, in `dir`.
SweepRow run_point(const SweepSpec& spec, const SweepPoint& p, const fs::path& dir, const SweepOptions& o) {
    SweepRow row = blank_row(p);
    std::error_code ec;
    fs::remove_all(dir, ec);  // a failed or interrupted run starts again from nothing
    fs::create_directories(dir);
    const Experiment e = run_experiment(p, dir);
    write_whole(dir / "experiment.yaml", experiment_yaml(e));
    write_whole(dir / "nodes.txt", nodes_text(spec.nodes));
    write_run_record(dir.string(), "sweep", o.version, spec.nodes, e);
    const auto t0 = Clock::now();
    try {  // the graph's figures beside the accuracy (a graph that cannot be made: skipped below)
        const auto g = node::graph_stats(node::placed_graph(spec.nodes, e));
        row.gap_uniform = g.gaps_computed ? g.gap_uniform : NAN;
        row.gap_metropolis = g.gaps_computed ? g.gap_metropolis : NAN;
        row.byzantine_neighbours_max = static_cast<int>(g.byzantine_max);
    } catch (const std::exception&) {
    }
    if (const std::string why = unrunnable(spec, e); !why.empty()) {
        row.status = "skipped";
        row.error = why;
        write_whole(dir / "status.json", row_json(row) + "\n");
        return row;
    }
    try {
        const data::DatasetEntry* set = data::find_dataset(e.data.dataset);
        if (!set) throw ConfigError("data.dataset: unknown data set '" + e.data.dataset + "'");
        auto data = set->load(data_root(e));  // one copy per process: concurrent runs share it
        const auto all = node::settings_for_all(spec.nodes, e);
        node::check_shards(all, data->train);
        ClusterOptions co;
        co.pattern = e.transport.pattern == "hub" ? Pattern::Hub : Pattern::Mesh;
        co.scheme = *transport::parse_scheme(e.transport.endpoint);
        co.ipc_dir = (dir / "ipc").string();
        if (co.scheme == transport::Scheme::Ipc) fs::create_directories(co.ipc_dir);
        co.ephemeral_ports = true;
        co.stop_requested = o.stop_requested;
        const auto results = run_threads(spec.nodes, e, co, *data);
        std::vector<double> accs, losses, agg_ms;
        double bytes = 0;
        int rounds = e.training.rounds;
        for (const auto& s : all) {
            const auto& r = results.at(s.id);
            write_summary(dir.string(), s, r);
            bytes += static_cast<double>(r.counters.bytes_out);
            if (s.type != NodeType::Honest) continue;
            rounds = std::min(rounds, r.rounds_done);
            accs.push_back(r.final_eval.accuracy);
            losses.push_back(r.final_eval.loss);
            agg_ms.push_back(r.rounds_done ? 1000.0 * r.seconds_aggregate / r.rounds_done : 0.0);
        }
        row.rounds = rounds;
        row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        auto mean = [](const std::vector<double>& v) {
            double s = 0;
            for (double x : v) s += x;
            return v.empty() ? NAN : s / static_cast<double>(v.size());
        };
        row.acc_mean = mean(accs);
        row.acc_worst = accs.empty() ? NAN : *std::min_element(accs.begin(), accs.end());
        row.acc_best = accs.empty() ? NAN : *std::max_element(accs.begin(), accs.end());
        row.loss_mean = mean(losses);
        row.aggregate_ms_round = mean(agg_ms);
        row.bytes_per_node_round = rounds > 0 ? bytes / static_cast<double>(all.size()) / rounds : NAN;
        row.status = rounds < e.training.rounds ? "interrupted" : "done";
    } catch (const std::exception& ex) {
        row.status = "failed";
        row.error = ex.what();
        row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    write_whole(dir / "status.json", row_json(row) + "\n");
    return row;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string fixed(double v, int digits = 4) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : ""; }

void write_results(const SweepSpec& spec, const fs::path& out, const std::vector<SweepRow>& rows) {
    std::string csv = "name";
    for (const auto& a : spec.axes) {
        csv += ',';
        csv += csv_field(axis_label(spec, a.key));
    }
    csv += ",seed,status,acc_mean,acc_worst,acc_best,loss_mean,rounds,seconds,bytes_per_node_round,"
           "aggregate_ms_round,gap_uniform,gap_metropolis,byzantine_neighbours_max,error\n";
    std::string json = "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        csv += csv_field(r.name);
        for (const auto& [k, v] : r.at) {
            csv += ',';
            csv += csv_field(v);
        }
        csv += fmt::format(",{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.seed, r.status, fixed(r.acc_mean),
                           fixed(r.acc_worst), fixed(r.acc_best), fixed(r.loss_mean), r.rounds, fixed(r.seconds, 2),
                           fixed(r.bytes_per_node_round, 0), fixed(r.aggregate_ms_round, 3), fixed(r.gap_uniform),
                           fixed(r.gap_metropolis), r.byzantine_neighbours_max, csv_field(r.error));
        json += "  " + row_json(r) + (i + 1 < rows.size() ? ",\n" : "\n");
    }
    json += "]\n";
    write_whole(out / "results.csv", csv);
    write_whole(out / "results.json", json);

    // summary.md: per point, mean ± std over its seeds; per aggregator its worst attack.
    struct Stat {
        std::vector<double> mean, worst, gap;
        int byzantine_max = -1;
        std::vector<std::pair<std::string, std::string>> at;
        std::set<std::string> status;
    };
    std::vector<std::string> order;
    std::map<std::string, Stat> groups;
    for (const auto& r : rows) {
        auto [it, fresh] = groups.try_emplace(r.group);
        if (fresh) order.push_back(r.group), it->second.at = r.at;
        it->second.status.insert(r.status);
        if (r.status == "done") it->second.mean.push_back(r.acc_mean), it->second.worst.push_back(r.acc_worst);
        if (std::isfinite(r.gap_uniform)) {  // the graph was made
            it->second.gap.push_back(r.gap_uniform);
            it->second.byzantine_max = std::max(it->second.byzantine_max, r.byzantine_neighbours_max);
        }
    }
    // When the graph or the attackers' places are an axis, the graph's figures beside the accuracy.
    const bool graph_axis = std::any_of(spec.axes.begin(), spec.axes.end(), [](const SweepAxis& a) {
        return a.key.rfind("topology.", 0) == 0 || a.key.rfind("byzantine.", 0) == 0;
    });
    auto mean_sd = [](const std::vector<double>& v) {
        if (v.empty()) return std::string("-");
        double m = 0, q = 0;
        for (double x : v) m += x;
        m /= static_cast<double>(v.size());
        for (double x : v) q += (x - m) * (x - m);
        const double sd = v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0;
        return fmt::format("{:.4f} ± {:.4f}", m, sd);
    };
    std::string md = fmt::format("# Sweep {}\n\n{} runs; final test accuracy of the honest nodes, mean ± standard "
                                 "deviation over seeds (n = runs done).\n\n|",
                                 spec.source, rows.size());
    for (const auto& a : spec.axes) md += " " + axis_label(spec, a.key) + " |";
    md += " n | mean accuracy | worst honest node |";
    if (graph_axis) md += " spectral gap (uniform) | most Byzantine neighbours |";
    md += " status |\n|";
    for (std::size_t i = 0; i < spec.axes.size() + (graph_axis ? 6 : 4); ++i) md += "---|";
    md += "\n";
    for (const auto& g : order) {
        const Stat& s = groups[g];
        md += "|";
        for (const auto& [k, v] : s.at) md += " " + v + " |";
        std::string status;
        for (const auto& st : s.status) status += (status.empty() ? "" : ", ") + st;
        md += fmt::format(" {} | {} | {} |", s.mean.size(), mean_sd(s.mean), mean_sd(s.worst));
        if (graph_axis) {
            double gap = 0;
            for (double x : s.gap) gap += x;
            md += fmt::format(" {} | {} |", s.gap.empty() ? "-" : fmt::format("{:.4f}", gap / static_cast<double>(s.gap.size())),
                              s.byzantine_max < 0 ? "-" : std::to_string(s.byzantine_max));
        }
        md += fmt::format(" {} |\n", status);
    }
    // The figure Byzantine papers report: each aggregator's accuracy under its worst attack.
    auto has = [&](const char* key) {
        return std::any_of(spec.axes.begin(), spec.axes.end(), [&](const SweepAxis& a) { return a.key == key; });
    };
    if (has("robust.aggregator") && has("robust.attack")) {
        std::map<std::string, std::map<std::string, std::vector<double>>> by;  // aggregator (+pre) -> attack -> worst
        std::vector<std::string> rules;
        for (const auto& r : rows) {
            if (r.status != "done") continue;
            std::string rule, pre, attack, rest;
            for (const auto& [k, v] : r.at) {
                if (k == "robust.aggregator") rule = v;
                else if (k == "robust.pre_aggregators") pre = v == "none" ? std::string() : v;
                else if (k == "robust.attack") attack = v;
                else rest += fmt::format("{}{} {}", rest.empty() ? "" : ", ", axis_label(spec, k), v);
            }
            const std::string key = fmt::format("{}{}{}", rule, pre.empty() ? "" : " after " + pre,
                                                rest.empty() ? "" : " (" + rest + ")");
            if (!by.count(key)) rules.push_back(key);
            by[key][attack].push_back(r.acc_worst);
        }
        md += "\n## Worst case over attacks\n\nPer aggregator, the attack that hurt most: the mean over seeds of the "
              "worst honest node's final accuracy.\n\n| aggregator | worst attack | accuracy |\n|---|---|---|\n";
        for (const auto& rule : rules) {
            std::string worst_attack;
            double worst = INFINITY;
            for (const auto& [attack, v] : by[rule]) {
                double m = 0;
                for (double x : v) m += x;
                m /= static_cast<double>(v.size());
                if (m < worst) worst = m, worst_attack = attack;
            }
            md += fmt::format("| {} | {} | {:.4f} |\n", rule, worst_attack, worst);
        }
    }
    write_whole(out / "summary.md", md);
}

std::string duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const long t = std::lround(s);
    return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

}  // namespace

std::string describe_grid(const SweepSpec& spec, const std::vector<SweepPoint>& points) {
    std::string out = fmt::format("{}: {} axes, {} seed(s), {} runs of {} nodes\n", spec.source, spec.axes.size(),
                                  spec.seeds.size(), points.size(), spec.nodes.nodes.size());
    for (const auto& a : spec.axes) {
        std::string values;
        for (const auto& l : a.labels) values += (values.empty() ? "" : ", ") + l;
        out += fmt::format("  axis {} ({}): {}\n", axis_label(spec, a.key), a.key, values);
    }
    for (const auto& p : points) {
        const std::string why = unrunnable(spec, p.experiment);
        out += fmt::format("  {}{}\n", p.name, why.empty() ? "" : "  [skipped: " + why + "]");
    }
    return out;
}

std::vector<SweepRow> run_sweep(const SweepSpec& spec, const std::string& sweep_path,
                                const std::vector<SweepPoint>& points, const SweepOptions& o) {
    const fs::path out = o.out;
    fs::create_directories(out / "runs");
    const std::string text = slurp(sweep_path);
    const fs::path mine = out / "sweep.yaml";
    std::error_code ec;
    if (fs::exists(mine, ec) && slurp(mine) != text && !o.force)
        throw ConfigError(fmt::format("{}: holds another sweep ({} differs from {}); use another --out or --force",
                                      out.string(), mine.string(), sweep_path));
    write_whole(mine, text);

    std::vector<SweepRow> rows(points.size());
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < points.size(); ++i) {
        // Finished, and with this point's settings (a sweep file edited under --force reruns what changed).
        const fs::path dir = out / "runs" / points[i].name;
        auto done = read_row(dir / "status.json");
        if (done && (done->status == "done" || done->status == "skipped") &&
            slurp(dir / "experiment.yaml") == experiment_yaml(run_experiment(points[i], dir)) &&
            slurp(dir / "nodes.txt") == nodes_text(spec.nodes))
            rows[i] = *done;
        else
            todo.push_back(i);
    }
    const std::size_t nodes = std::max<std::size_t>(1, spec.nodes.nodes.size());
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const int jobs = o.jobs > 0 ? o.jobs : static_cast<int>(std::max<std::size_t>(1, cores / nodes));
    const std::size_t already = points.size() - todo.size();
    std::fprintf(stderr, "sweep: %zu runs, %zu already done, %zu to run, %d at a time; results in %s\n",
                 points.size(), already, todo.size(), jobs, out.string().c_str());

    // Node lines would drown the progress: warnings only while the runs go.
    const auto level = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);
    std::mutex mutex;
    std::set<std::string> running;
    std::size_t finished = 0;
    std::atomic<std::size_t> next{0};
    std::atomic<bool> all_done{false};
    const auto start = Clock::now();
    auto status_line = [&] {
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        const double left = finished ? elapsed / static_cast<double>(finished) *
                                           static_cast<double>(todo.size() - finished)
                                     : NAN;
        std::string now;
        for (const auto& r : running) now += (now.empty() ? "" : ", ") + r;
        return fmt::format("sweep: {}/{} done, elapsed {}, ~{} left; running {}", already + finished, points.size(),
                           duration(elapsed), duration(left), now.empty() ? "-" : now);
    };
    std::thread ticker;
    if (o.progress_tty)
        ticker = std::thread([&] {
            while (!all_done.load()) {
                {
                    std::lock_guard lock(mutex);
                    std::fprintf(stderr, "\r\033[K%s", status_line().c_str());
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a display refresh, not a wait on work
            }
        });
    auto worker = [&] {
        for (;;) {
            if (o.stop_requested && o.stop_requested()) return;
            const std::size_t k = next.fetch_add(1);
            if (k >= todo.size()) return;
            const SweepPoint& p = points[todo[k]];
            {
                std::lock_guard lock(mutex);
                running.insert(p.name);
            }
            SweepRow r;
            try {
                r = run_point(spec, p, out / "runs" / p.name, o);
            } catch (const std::exception& ex) {  // the folder could not be written: this run failed, not the sweep
                r = blank_row(p);
                r.status = "failed";
                r.error = ex.what();
            }
            std::lock_guard lock(mutex);
            running.erase(p.name);
            ++finished;
            rows[todo[k]] = r;
            const std::string what =
                r.status == "done"
                    ? fmt::format("acc {:.4f} (worst {:.4f}) in {:.1f} s", r.acc_mean, r.acc_worst, r.seconds)
                    : r.status + (r.error.empty() ? "" : ": " + r.error);
            if (o.progress_tty)
                std::fprintf(stderr, "\r\033[K[%zu/%zu] %s: %s\n", already + finished, points.size(), p.name.c_str(),
                             what.c_str());
            else
                std::fprintf(stderr, "sweep: [%zu/%zu] %s: %s (%s)\n", already + finished, points.size(),
                             p.name.c_str(), what.c_str(), status_line().c_str());
        }
    };
    std::vector<std::thread> pool;
    for (int j = 0; j < jobs; ++j) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
    all_done = true;
    if (ticker.joinable()) ticker.join();
    if (o.progress_tty) std::fprintf(stderr, "\r\033[K");
    spdlog::set_level(level);
    for (std::size_t i = 0; i < rows.size(); ++i)
        if (rows[i].status.empty()) {  // never started (stopped before its turn)
            rows[i] = blank_row(points[i]);
            rows[i].status = "not run";
        }
    write_results(spec, out, rows);
    return rows;
}

}  // namespace p2p::launch

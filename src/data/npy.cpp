#include "p2pnode/data/npy.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <xtensor/xadapt.hpp>
#include <xtensor/xnpy.hpp>

#include "p2pnode/errors.hpp"

namespace p2p::data {

namespace {

template <class T>
void read_values(std::ifstream& in, const std::string& path, std::size_t rows, std::size_t cols, bool fortran,
                 std::vector<T>& out) {
    out.resize(rows * cols);
    in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(T)));
    if (!in) throw IoError(fmt::format("{}: truncated data", path));
    if (fortran) {  // column-major on disk: transpose to row-major
        std::vector<T> t(out.size());
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c) t[r * cols + c] = out[c * rows + r];
        out.swap(t);
    }
}

template <class T>
void write_vector(const std::string& path, std::span<const T> v) {
    std::ofstream probe(path, std::ios::binary);
    if (!probe) throw IoError(fmt::format("{}: cannot write", path));
    probe.close();
    std::vector<std::size_t> shape{v.size()};
    xt::dump_npy(path, xt::adapt(v.data(), v.size(), xt::no_ownership(), shape));
}

}  // namespace

NpyMatrix read_npy_matrix(const std::string& path) {
    std::error_code ec;
    const auto file_size = std::filesystem::file_size(path, ec);
    if (ec) throw IoError(fmt::format("{}: cannot read: {}", path, ec.message()));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("{}: cannot read", path));
    char magic[8] = {};
    in.read(magic, 8);
    if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw IoError(fmt::format("{}: not a .npy file", path));
    std::size_t header_len = 0, prefix = 0;
    if (magic[6] == 1) {
        unsigned char b[2];
        in.read(reinterpret_cast<char*>(b), 2);
        header_len = b[0] | (std::size_t{b[1]} << 8);
        prefix = 10;
    } else if (magic[6] == 2 || magic[6] == 3) {
        unsigned char b[4];
        in.read(reinterpret_cast<char*>(b), 4);
        header_len = b[0] | (std::size_t{b[1]} << 8) | (std::size_t{b[2]} << 16) | (std::size_t{b[3]} << 24);
        prefix = 12;
    } else {
        throw IoError(fmt::format("{}: unsupported .npy version {}", path, static_cast<int>(magic[6])));
    }
    if (!in || prefix + header_len > file_size) throw IoError(fmt::format("{}: truncated header", path));
    std::string header(header_len, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_len));

    std::string descr;
    bool fortran = false;
    std::vector<std::size_t> shape;
    try {
        xt::detail::parse_header(header, descr, &fortran, shape);
    } catch (const std::exception& e) {
        throw IoError(fmt::format("{}: bad .npy header: {}", path, e.what()));
    }
    NpyMatrix m;
    if (descr == "<f8")
        m.is_double = true;
    else if (descr != "<f4")
        throw IoError(fmt::format("{}: dtype '{}' is not supported (float32 '<f4' or float64 '<f8')", path, descr));
    if (shape.size() != 2)
        throw IoError(fmt::format("{}: expected a 2-D (n, d) matrix, got {} dimensions", path, shape.size()));
    m.rows = shape[0];
    m.cols = shape[1];
    if (m.rows == 0 || m.cols == 0) throw IoError(fmt::format("{}: empty matrix ({} x {})", path, m.rows, m.cols));
    const std::size_t word = m.is_double ? 8 : 4;
    const std::size_t data_bytes = file_size - prefix - header_len;
    if (m.rows > data_bytes / word / m.cols || m.rows * m.cols * word != data_bytes)
        throw IoError(fmt::format("{}: the header says {} x {} values of {} bytes but the file holds {} data bytes",
                                  path, m.rows, m.cols, word, data_bytes));
    if (m.is_double)
        read_values(in, path, m.rows, m.cols, fortran, m.f64);
    else
        read_values(in, path, m.rows, m.cols, fortran, m.f32);
    return m;
}

void write_npy_vector(const std::string& path, std::span<const float> v) { write_vector(path, v); }
void write_npy_vector(const std::string& path, std::span<const double> v) { write_vector(path, v); }

}  // namespace p2p::data

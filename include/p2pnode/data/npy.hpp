// NumPy .npy files for `p2pnode aggregate`: an (n, d) float32 or float64 matrix in, a (d,)
// vector of the same dtype out. Errors (IoError) name the file and what is wrong.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace p2p::data {

struct NpyMatrix {
    bool is_double = false;      // '<f8' (else '<f4')
    std::size_t rows = 0, cols = 0;
    std::vector<float> f32;      // rows * cols, row-major (filled when !is_double)
    std::vector<double> f64;     // rows * cols, row-major (filled when is_double)
};

// Reads a 2-D little-endian float32/float64 array (C or Fortran order). The header is checked
// against the file's size before anything is allocated.
NpyMatrix read_npy_matrix(const std::string& path);

void write_npy_vector(const std::string& path, std::span<const float> v);
void write_npy_vector(const std::string& path, std::span<const double> v);

}  // namespace p2p::data

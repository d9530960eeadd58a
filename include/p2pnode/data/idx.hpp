// MNIST-format (IDX) data sets: images kept as uint8 (47 MB for 60,000 images, a quarter of
// float32) and scaled to [0, 1] only when a batch is drawn.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <string>
#include <vector>

namespace p2p::data {

// Images of shape (channels, rows, cols), uint8, with labels in 0 .. classes - 1.
struct Dataset {
    std::size_t count = 0;
    std::size_t channels = 1;
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::size_t classes = 10;
    std::vector<std::uint8_t> pixels;  // count * channels * rows * cols, channel-major per image
    std::vector<std::uint8_t> labels;  // count values in 0 .. classes - 1

    std::size_t image_size() const { return channels * rows * cols; }
};

// Reads an IDX image file (magic 0x00000803) or label file (0x00000801), raw or gzip.
// Errors (IoError) name the file and what is wrong: missing, bad magic, truncated, corrupt gzip.
std::vector<std::uint8_t> read_idx_images(const std::string& path, std::size_t& count, std::size_t& rows,
                                          std::size_t& cols);
std::vector<std::uint8_t> read_idx_labels(const std::string& path);

enum class Split { Train, Test };

// Loads `train-*` or `t10k-*` images and labels from `root`, each file raw or `.gz`. Checks that
// the counts agree and that images are 28x28; the class count is the largest label + 1 (of
// this split; load_mnist_data takes the larger of both).
Dataset load_mnist(const std::string& root, Split split);

// CIFAR-10's binary version: data_batch_1.bin ... data_batch_5.bin (train) and test_batch.bin
// in `root` (or in root/cifar-10-batches-bin), records of 1 label byte (0..9) and 3,072 pixel
// bytes (1,024 red, green, blue, row by row: 3 x 32 x 32). IoError names the file and what is
// wrong (missing, not whole records, a label outside 0..9).
Dataset load_cifar10(const std::string& root, Split split);

// The default data root: ./data when it holds MNIST-format training files, else Debian's
// /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist).
std::string default_data_root();

// Both splits of one root, loaded once and shared read-only (nodes run as threads share it).
struct MnistData {
    std::string root;
    Dataset train;
    Dataset test;
};
std::shared_ptr<const MnistData> load_mnist_data(const std::string& root);
std::shared_ptr<const MnistData> load_cifar10_data(const std::string& root);

// The data-set catalogue: one row per format a root can hold (`data.dataset` / `--dataset`,
// `p2pnode list datasets`). Each loads both splits from a folder.
struct DatasetEntry {
    std::string_view name;
    std::string_view description;
    std::shared_ptr<const MnistData> (*load)(const std::string& root);
    std::size_t channels, height, width;  // the images every set of this format holds
    std::size_t max_classes;              // the most classes its labels can name (message bounds)
};
std::span<const DatasetEntry> datasets();
const DatasetEntry* find_dataset(std::string_view name);

}  // namespace p2p::data

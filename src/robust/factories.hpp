// How a rule's file defines the factory its catalogue row points at (internal to src/robust):
//   P2P_AGGREGATOR_FACTORY(krum) { return std::make_unique<Krum<T>>(false, p); }
//   P2P_INSTANTIATE_AGGREGATOR(krum);
// catalogue.cpp declares each factory beside its row.
#pragma once

#include <memory>
#include <string_view>

#include "p2pnode/robust/robust.hpp"

#define P2P_AGGREGATOR_FACTORY(fn) \
    template <class T>             \
    std::unique_ptr<Aggregator<T>> fn([[maybe_unused]] std::string_view name, [[maybe_unused]] const Params& p)
#define P2P_PRE_AGGREGATOR_FACTORY(fn) \
    template <class T>                 \
    std::unique_ptr<PreAggregator<T>> fn([[maybe_unused]] const Params& p)
#define P2P_ATTACK_FACTORY(fn) \
    template <class T>         \
    std::unique_ptr<Attack<T>> fn([[maybe_unused]] std::string_view name, [[maybe_unused]] const AttackParams& p)

#define P2P_INSTANTIATE_AGGREGATOR(fn)                                                       \
    template std::unique_ptr<Aggregator<float>> fn<float>(std::string_view, const Params&); \
    template std::unique_ptr<Aggregator<double>> fn<double>(std::string_view, const Params&)
#define P2P_INSTANTIATE_PRE_AGGREGATOR(fn)                                   \
    template std::unique_ptr<PreAggregator<float>> fn<float>(const Params&); \
    template std::unique_ptr<PreAggregator<double>> fn<double>(const Params&)
#define P2P_INSTANTIATE_ATTACK(fn)                                                            \
    template std::unique_ptr<Attack<float>> fn<float>(std::string_view, const AttackParams&); \
    template std::unique_ptr<Attack<double>> fn<double>(std::string_view, const AttackParams&)

// Capacity planning from the live distribution of ports in use per subscriber: the refusal rate
// a pool gives, and the pool size, port range or block size that keeps it under a target.
// Pure arithmetic (no DPDK, no socket): ephemeractl plan feeds it /ephemera/top and
// /ephemera/config, or a histogram file.
//
// The model:
//  - Each subscriber has one peak demand (ports in use at once, busiest protocol). A histogram
//    bucket gives its subscribers the bucket's upper bound: the planner errs towards refusals.
//  - A subscriber is paired with a pool address by a hash of its address and owned by a worker
//    by another hash, and takes ports only from that worker's share of that address. So the
//    bins ports are taken from are (address, worker) pairs, `ports_per_address / workers` ports
//    each, and subscribers fall into them uniformly at random.
//  - Subscribers of a bin reach their peak in random order. Dynamic: one takes its demand while
//    the bin has that many ports left; the first that does not fit is refused (its last ports),
//    the bin is then empty and every later subscriber with demand is refused too. Blocks: the
//    bin holds floor(share / block_size) blocks; a subscriber needs ceil(demand / block_size);
//    more than max_blocks is refused (it still holds max_blocks); when the bin's blocks run out
//    the subscriber that did not fit and all later ones are refused.
//  - The refusal rate is refused subscribers / all subscribers (those with no demand count in
//    the denominator and are never refused).
//
// Why Monte Carlo and not a normal approximation of the per-bin sum: the demand distribution
// of real subscribers is heavy-tailed (a few per cent hold hundreds or thousands of ports), so
// the sum over the few dozen subscribers of a bin is far from normal in the tail that decides
// refusals, and a normal approximation misjudges exactly the rare overflows the target is
// about. The simulation needs only the histogram, follows the refusal rule above exactly, and
// with a fixed seed it is reproducible and gives the same random numbers to every candidate
// size (common random numbers), so the searches below see a rate that falls with the size
// instead of jittering around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ephemeractl::planner {

struct Bucket {
    std::uint32_t demand = 0; // ports in use at the peak (the bucket's upper bound)
    std::uint64_t count = 0;  // subscribers in the bucket
};

enum class Mode { dynamic, blocks };

struct Setup {
    std::vector<Bucket> demand;
    std::uint64_t subscribers = 0; // at least the buckets' total; the rest demand nothing
    std::uint32_t pool_size = 1;
    std::uint32_t ports_per_address = 64512; // usable per protocol (range minus reserved)
    std::uint32_t workers = 1;
    Mode mode = Mode::dynamic;
    std::uint32_t block_size = 256;
    std::uint32_t max_blocks = 8;
};

// Limits of what the planner recommends: a pool index is 16 bits, a port 16 bits, and
// [pool.blocks] accepts block sizes of 64..4096 and 1..64 blocks.
inline constexpr std::uint32_t kMaxPoolSize = 65535;
inline constexpr std::uint32_t kMaxPortsPerAddress = 65535;
inline constexpr std::uint32_t kMaxMaxBlocks = 64;
inline constexpr std::uint32_t kMaxWorkers = 1024;
inline constexpr std::uint32_t kBlockSizes[] = {64, 128, 256, 512, 1024, 2048, 4096};

struct Simulation {
    std::uint64_t seed = 0x5eed'ca9a'c17e'0001ull;
    // Subscriber draws per estimate: at least min_draws, then more (up to max_draws) until
    // min_refusals refusals were seen, so that a rate near the target rests on enough events.
    std::uint64_t min_draws = 10'000'000;
    std::uint64_t max_draws = 40'000'000;
    std::uint64_t min_refusals = 20000;
};

// Why a setup cannot be planned (empty histogram, zero sizes...), or empty when it can.
std::string check(const Setup& setup);

// The estimated share of subscribers refused a port at the peak. setup must pass check().
double refusal_rate(const Setup& setup, const Simulation& sim = {});

// The granularity of the ports per address recommendation: 64 ports per worker (a block per
// worker in blocks mode). A port or two more changes the rate by far less than the estimate's
// own error, so a finer answer would be noise.
std::uint32_t port_step(const Setup& setup);

// The smallest pool size (current range), ports per address (current pool, a multiple of
// port_step), or max_blocks
// (current block size) whose refusal rate is at most target; none when even the limit above
// misses it.
std::optional<std::uint32_t> min_pool_size(const Setup& setup, double target,
                                           const Simulation& sim = {});
std::optional<std::uint32_t> min_ports_per_address(const Setup& setup, double target,
                                                   const Simulation& sim = {});
std::optional<std::uint32_t> min_max_blocks(const Setup& setup, double target,
                                            const Simulation& sim = {});

struct BlockOption {
    std::uint32_t block_size = 0;
    std::optional<std::uint32_t> max_blocks; // the smallest that meets the target, if any
    double refusal_rate = 0;                 // at that max_blocks (or at the largest tried)
    // The pool that meets the target with this block size and the max_blocks above, or, when
    // none is given, the fewest blocks that keep subscribers beyond max_blocks under the target.
    std::optional<std::uint32_t> pool_size;
};

struct Plan {
    double target = 0;
    double current = 0; // refusal rate of the setup as given
    std::optional<std::uint32_t> pool_size;
    std::optional<std::uint32_t> ports_per_address;
    // Blocks mode: subscribers whose demand is beyond block_size x max_blocks, refused
    // whatever the pool; when over the target no pool or range can meet it.
    double beyond_max_blocks = 0;
    std::vector<BlockOption> blocks; // blocks mode only: one per size of kBlockSizes
};

Plan make_plan(const Setup& setup, double target, const Simulation& sim = {});

} // namespace ephemeractl::planner

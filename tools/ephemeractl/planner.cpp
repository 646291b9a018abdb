#include "planner.hpp"

#include <algorithm>
#include <cmath>

namespace ephemeractl::planner {

namespace {

// splitmix64: small, fast, and the same sequence on every platform (the standard library's
// distributions are not), so a plan is reproducible anywhere.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t x = (state_ += 0x9e3779b97f4a7c15ull);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
    }
    // Uniform in [0, n): the high half of a 64x64 product; the bias is below 2^-40 here.
    std::uint64_t below(std::uint64_t n) {
        __extension__ using u128 = unsigned __int128;
        return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
    }

private:
    std::uint64_t state_;
};

// Draws a subscriber's demand with the histogram's probabilities.
class Population {
public:
    explicit Population(const Setup& s) {
        for (const Bucket& b : s.demand) {
            if (b.count != 0) {
                total_ += b.count;
                cumulative_.push_back(total_);
                demand_.push_back(b.demand);
            }
        }
        if (s.subscribers > total_) {
            total_ = s.subscribers;
            cumulative_.push_back(total_);
            demand_.push_back(0);
        }
    }
    [[nodiscard]] std::uint64_t total() const { return total_; }
    std::uint32_t draw(Rng& rng) const {
        const std::uint64_t u = rng.below(total_);
        const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
        return demand_[static_cast<std::size_t>(it - cumulative_.begin())];
    }
    // Share of subscribers whose demand is above `ports`.
    [[nodiscard]] double above(std::uint64_t ports) const {
        std::uint64_t n = 0;
        std::uint64_t previous = 0;
        for (std::size_t i = 0; i < demand_.size(); ++i) {
            if (demand_[i] > ports) {
                n += cumulative_[i] - previous;
            }
            previous = cumulative_[i];
        }
        return static_cast<double>(n) / static_cast<double>(total_);
    }
    // Every subscriber's demand, bucket by bucket.
    [[nodiscard]] std::vector<std::uint32_t> everyone() const {
        std::vector<std::uint32_t> all;
        all.reserve(total_);
        std::uint64_t previous = 0;
        for (std::size_t i = 0; i < demand_.size(); ++i) {
            all.insert(all.end(), cumulative_[i] - previous, demand_[i]);
            previous = cumulative_[i];
        }
        return all;
    }
    [[nodiscard]] std::uint32_t max_demand() const {
        return demand_.empty() ? 0 : *std::max_element(demand_.begin(), demand_.end());
    }

private:
    std::vector<std::uint64_t> cumulative_;
    std::vector<std::uint32_t> demand_;
    std::uint64_t total_ = 0;
};

// One subscriber reaching its peak in bin `left` (ports, or blocks, still free there); true
// when it is refused. The rule of planner.hpp.
bool take(const Setup& s, std::uint32_t demand, std::uint64_t& left) {
    if (s.mode == Mode::dynamic) {
        if (demand <= left) {
            left -= demand;
            return false;
        }
        left = 0;
        return true;
    }
    const std::uint64_t need = (std::uint64_t{demand} + s.block_size - 1) / s.block_size;
    if (need > s.max_blocks) {
        left -= std::min<std::uint64_t>(s.max_blocks, left);
        return true;
    }
    if (need <= left) {
        left -= need;
        return false;
    }
    left = 0;
    return true;
}

// With a target, draws stop early once the rate is clearly on one side of it: after an eighth
// of min_draws when off by a factor of four, after min_draws when off by two. A search only
// needs the side, most of its candidates are far from the target, and the low rates far under
// it would otherwise always run to max_draws.
double simulate(const Setup& s, const Population& population, const Simulation& sim,
                double target = std::nan("")) {
    const std::uint64_t bins_total = std::uint64_t{s.pool_size} * s.workers;
    const std::uint64_t share = s.ports_per_address / s.workers;
    const std::uint64_t capacity = s.mode == Mode::dynamic ? share : share / s.block_size;
    const std::uint64_t n = population.total();
    // A large population is simulated on a sample of its bins with the same number of
    // subscribers per bin, which is all the refusal rate depends on.
    std::uint64_t bins = bins_total;
    std::uint64_t per_round = n;
    if (n > sim.min_draws) {
        bins = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(static_cast<long double>(bins_total) * sim.min_draws /
                                          static_cast<long double>(n)));
        per_round = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::llround(static_cast<long double>(n) * bins /
                                                       static_cast<long double>(bins_total))));
    }
    Rng rng(sim.seed);
    // A bin's free ports (or blocks) count only when stamped with the current round; the
    // others are full. A round then costs its subscribers, not the bins, which matters when a
    // search tries tens of thousands of addresses for a few subscribers.
    std::vector<std::uint64_t> left(bins);
    std::vector<std::uint32_t> stamp(bins, 0);
    std::uint32_t round = 0;
    std::uint64_t draws = 0;
    std::uint64_t refused = 0;
    const auto within = [&](double factor) {
        const double rate = static_cast<double>(refused) / static_cast<double>(draws);
        return std::isnan(target) || (rate > target / factor && rate < target * factor);
    };
    // The whole population fits a round: it is taken as it is, in a new random order each
    // round, rather than drawn with replacement, which would vary how many heavy subscribers
    // there are from round to round (and, for a small population, by a lot).
    std::vector<std::uint32_t> everyone =
        n <= sim.min_draws ? population.everyone() : std::vector<std::uint32_t>{};
    while (draws == 0 || draws < sim.min_draws / 8 || (draws < sim.min_draws && within(4)) ||
           (refused < sim.min_refusals && draws < sim.max_draws && within(2))) {
        if (++round == 0) {
            std::fill(stamp.begin(), stamp.end(), 0);
            round = 1;
        }
        for (std::uint64_t i = 0; i < per_round; ++i) {
            std::uint32_t demand;
            if (everyone.empty()) {
                demand = population.draw(rng);
            } else {
                // One step of a Fisher-Yates shuffle: subscriber i of this round's order.
                std::swap(everyone[i], everyone[i + rng.below(per_round - i)]);
                demand = everyone[i];
            }
            const std::uint64_t bin = rng.below(bins);
            if (stamp[bin] != round) {
                stamp[bin] = round;
                left[bin] = capacity;
            }
            if (demand != 0 && take(s, demand, left[bin])) {
                ++refused;
            }
        }
        draws += per_round;
    }
    return static_cast<double>(refused) / static_cast<double>(draws);
}

// The smallest value in [lo, hi] whose rate meets target, assuming the rate does not grow
// with the value; none when hi misses it.
template <typename RateOf>
std::optional<std::uint32_t> smallest(std::uint32_t lo, std::uint32_t hi, double target,
                                      RateOf rate_of) {
    if (rate_of(hi) > target) {
        return std::nullopt;
    }
    while (lo < hi) {
        const std::uint32_t mid = lo + (hi - lo) / 2;
        if (rate_of(mid) <= target) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return hi;
}

} // namespace

std::uint32_t port_step(const Setup& s) {
    return std::min(kMaxPortsPerAddress, s.workers * (s.mode == Mode::blocks ? s.block_size : 64));
}

std::string check(const Setup& s) {
    std::uint64_t total = 0;
    for (const Bucket& b : s.demand) {
        total += b.count;
    }
    if (std::max(total, s.subscribers) == 0) {
        return "no subscribers in the histogram";
    }
    if (s.pool_size == 0 || s.pool_size > kMaxPoolSize) {
        return "the pool size must be 1..65535";
    }
    if (s.workers == 0 || s.workers > kMaxWorkers) {
        return "the workers must be 1..1024";
    }
    if (s.ports_per_address == 0 || s.ports_per_address > kMaxPortsPerAddress) {
        return "the ports per address must be 1..65535";
    }
    if (s.mode == Mode::blocks &&
        (s.block_size == 0 || s.block_size > kMaxPortsPerAddress || s.max_blocks == 0)) {
        return "the block size must be 1..65535 and max blocks positive";
    }
    return {};
}

double refusal_rate(const Setup& setup, const Simulation& sim) {
    return simulate(setup, Population(setup), sim);
}

std::optional<std::uint32_t> min_pool_size(const Setup& setup, double target,
                                           const Simulation& sim) {
    const Population population(setup);
    Setup s = setup;
    return smallest(1, kMaxPoolSize, target, [&](std::uint32_t pool) {
        s.pool_size = pool;
        return simulate(s, population, sim, target);
    });
}

std::optional<std::uint32_t> min_ports_per_address(const Setup& setup, double target,
                                                   const Simulation& sim) {
    const Population population(setup);
    Setup s = setup;
    const std::uint32_t step = port_step(setup);
    const auto steps = smallest(1, kMaxPortsPerAddress / step, target, [&](std::uint32_t k) {
        s.ports_per_address = k * step;
        return simulate(s, population, sim, target);
    });
    if (!steps) {
        return std::nullopt;
    }
    return *steps * step;
}

std::optional<std::uint32_t> min_max_blocks(const Setup& setup, double target,
                                            const Simulation& sim) {
    const Population population(setup);
    Setup s = setup;
    // More blocks than the largest demand needs change nothing; fewer than the target allows
    // refuse too many subscribers outright, before any address runs out. More blocks per
    // subscriber can also run addresses out sooner, so this is a scan, not a bisection; it
    // stops once the refusals left are nearly all addresses running out, which more blocks
    // per subscriber cannot cure.
    const std::uint32_t enough = std::min<std::uint32_t>(
        kMaxMaxBlocks,
        std::max<std::uint32_t>(1, (population.max_demand() + s.block_size - 1) / s.block_size));
    for (std::uint32_t m = 1; m <= enough; ++m) {
        const double beyond = population.above(std::uint64_t{m} * s.block_size);
        if (beyond > target) {
            continue;
        }
        s.max_blocks = m;
        if (simulate(s, population, sim, target) <= target) {
            return m;
        }
        if (beyond <= target / 4) {
            break;
        }
    }
    return std::nullopt;
}

Plan make_plan(const Setup& setup, double target, const Simulation& sim) {
    Plan plan;
    plan.target = target;
    plan.current = refusal_rate(setup, sim);
    plan.pool_size = min_pool_size(setup, target, sim);
    plan.ports_per_address = min_ports_per_address(setup, target, sim);
    if (setup.mode == Mode::blocks) {
        plan.beyond_max_blocks =
            Population(setup).above(std::uint64_t{setup.block_size} * setup.max_blocks);
        // The table of alternatives takes seven searches more: it settles for a quarter of the
        // refusals per estimate (about twice the error) to answer in seconds, not a minute.
        Simulation coarse = sim;
        coarse.min_refusals = sim.min_refusals / 4;
        coarse.max_draws = std::max(sim.min_draws, sim.max_draws / 4);
        for (const std::uint32_t size : kBlockSizes) {
            Setup s = setup;
            s.block_size = size;
            BlockOption option{size, min_max_blocks(s, target, coarse), 0, std::nullopt};
            s.max_blocks = option.max_blocks.value_or(kMaxMaxBlocks);
            option.refusal_rate = refusal_rate(s, coarse);
            std::optional<std::uint32_t> blocks = option.max_blocks;
            const Population population(s);
            for (std::uint32_t m = 1; !blocks && m <= kMaxMaxBlocks; ++m) {
                if (population.above(std::uint64_t{m} * size) <= target) {
                    blocks = m;
                }
            }
            if (blocks) {
                s.max_blocks = *blocks;
                option.pool_size = min_pool_size(s, target, coarse);
            }
            plan.blocks.push_back(option);
        }
    }
    return plan;
}

} // namespace ephemeractl::planner

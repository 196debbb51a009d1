#include <atomic>
#include <cstring>

#include "base/robust_mutex.h"
#include "base/units.h"
#include "memory/internal/heap.h"

namespace keel::memory_internal {
namespace {

BlockHeader* At(char* base, uint64_t offset) {
  return reinterpret_cast<BlockHeader*>(base + offset);
}
const BlockHeader* At(const char* base, uint64_t offset) {
  return reinterpret_cast<const BlockHeader*>(base + offset);
}

uint64_t End(const HeapHeader* heap) { return heap->start + heap->size; }

int BinOf(uint64_t size) {
  int bin = 63 - __builtin_clzll(size) - 6;  // 64 -> 0, 128 -> 1, ...
  return bin < kHeapBins ? bin : kHeapBins - 1;
}


// Orders the header writes before the store that links the block into the chain, so a
// process killed in between leaves a walkable chain (see heap.h).
void ChainFence() { std::atomic_signal_fence(std::memory_order_seq_cst); }

void PushFree(HeapHeader* heap, char* base, uint64_t offset) {
  BlockHeader* b = At(base, offset);
  const int bin = BinOf(b->size);
  b->state = kBlockFree;
  b->prev_free = 0;
  b->next_free = heap->free_heads[bin];
  if (b->next_free != 0) At(base, b->next_free)->prev_free = offset;
  heap->free_heads[bin] = offset;
  heap->free_bytes += b->size;
}

void RemoveFree(HeapHeader* heap, char* base, uint64_t offset) {
  BlockHeader* b = At(base, offset);
  if (b->prev_free != 0) {
    At(base, b->prev_free)->next_free = b->next_free;
  } else {
    heap->free_heads[BinOf(b->size)] = b->next_free;
  }
  if (b->next_free != 0) At(base, b->next_free)->prev_free = b->prev_free;
  b->next_free = b->prev_free = 0;
  heap->free_bytes -= b->size;
}

// Writes a fresh header for a block at `offset` that is not yet in the chain.
void WriteHeader(char* base, uint64_t offset, uint64_t size, uint64_t prev_size,
                 uint32_t state) {
  BlockHeader* b = At(base, offset);
  std::memset(b, 0, sizeof(*b));
  b->size = size;
  b->prev_size = prev_size;
  b->state = state;
  b->magic = kBlockMagic;
}

void SetNextPrevSize(const HeapHeader* heap, char* base, uint64_t offset) {
  const uint64_t next = offset + At(base, offset)->size;
  if (next < End(heap)) At(base, next)->prev_size = At(base, offset)->size;
}

// Where data aligned to `align` can start in free block `offset`, given that a leading
// remainder must be 0 or a whole block; 0 when the block cannot hold `need` bytes.
uint64_t FitIn(const char* base, uint64_t offset, uint64_t need, uint64_t align) {
  const BlockHeader* b = At(base, offset);
  uint64_t data = RoundUp(offset + kBlockHeaderSize, align);
  uint64_t lead = data - kBlockHeaderSize - offset;
  if (lead != 0 && lead < kMinBlockSize) {
    data = RoundUp(offset + kBlockHeaderSize + kMinBlockSize, align);
    lead = data - kBlockHeaderSize - offset;
  }
  return lead + need <= b->size ? data : 0;
}

}  // namespace

absl::Status HeapInit(HeapHeader* heap, char* base, uint64_t start, uint64_t size, int socket) {
  std::memset(static_cast<void*>(heap), 0, sizeof(*heap));
  if (absl::Status s = InitRobustMutex(&heap->lock, kHeapLockName); !s.ok()) return s;
  heap->socket = socket;
  heap->start = start;
  heap->size = size;
  WriteHeader(base, start, size, 0, kBlockFree);
  PushFree(heap, base, start);
  return absl::OkStatus();
}

void* HeapAllocLocked(HeapHeader* heap, char* base, uint64_t size, uint64_t align) {
  if (align < kBlockHeaderSize) align = kBlockHeaderSize;
  if (size > heap->size) return nullptr;
  const uint64_t need = kBlockHeaderSize + RoundUp(size == 0 ? 1 : size, 64);
  uint64_t block = 0;
  uint64_t data = 0;
  for (int bin = BinOf(need); bin < kHeapBins && block == 0; ++bin) {
    for (uint64_t b = heap->free_heads[bin]; b != 0; b = At(base, b)->next_free) {
      data = FitIn(base, b, need, align);
      if (data != 0) {
        block = b;
        break;
      }
    }
  }
  if (block == 0) return nullptr;
  RemoveFree(heap, base, block);

  // Split off a leading remainder so the data starts right after a header.
  const uint64_t header = data - kBlockHeaderSize;
  if (header != block) {
    BlockHeader* lead = At(base, block);
    WriteHeader(base, header, lead->size - (header - block), header - block, kBlockBusy);
    ChainFence();
    lead->size = header - block;  // the new block joins the chain here
    PushFree(heap, base, block);
    block = header;
  }
  BlockHeader* b = At(base, block);
  b->state = kBlockBusy;
  // Split off the tail when it can form a block of its own.
  if (b->size - need >= kMinBlockSize) {
    WriteHeader(base, block + need, b->size - need, need, kBlockFree);
    ChainFence();
    b->size = need;
    SetNextPrevSize(heap, base, block + need);
    PushFree(heap, base, block + need);
  }
  SetNextPrevSize(heap, base, block);
  b->requested = size;
  ++heap->busy_blocks;
  return base + data;
}

bool HeapFreeLocked(HeapHeader* heap, char* base, void* ptr) {
  if (!HeapContains(heap, base, ptr)) return false;
  const uint64_t data = static_cast<uint64_t>(static_cast<char*>(ptr) - base);
  if (data % 64 != 0 || data < heap->start + kBlockHeaderSize) return false;
  uint64_t block = data - kBlockHeaderSize;
  BlockHeader* b = At(base, block);
  if (b->magic != kBlockMagic || b->state != kBlockBusy) return false;
  --heap->busy_blocks;
  b->state = kBlockFree;

  // Merge with the next block.
  const uint64_t next = block + b->size;
  if (next < End(heap) && At(base, next)->state == kBlockFree) {
    RemoveFree(heap, base, next);
    b->size += At(base, next)->size;
  }
  // Merge into the previous block.
  if (b->prev_size != 0 && At(base, block - b->prev_size)->state == kBlockFree) {
    const uint64_t prev = block - b->prev_size;
    RemoveFree(heap, base, prev);
    At(base, prev)->size += b->size;
    b->magic = 0;  // no longer a block start: a second Free of ptr is refused
    block = prev;
  }
  SetNextPrevSize(heap, base, block);
  PushFree(heap, base, block);
  return true;
}

void HeapRebuildLocked(HeapHeader* heap, char* base) {
  for (uint64_t& head : heap->free_heads) head = 0;
  heap->free_bytes = 0;
  heap->busy_blocks = 0;
  uint64_t prev = 0;
  for (uint64_t b = heap->start; b < End(heap);) {
    BlockHeader* block = At(base, b);
    block->prev_size = prev == 0 ? 0 : At(base, prev)->size;
    if (block->state == kBlockFree && prev != 0 && At(base, prev)->state == kBlockFree) {
      // Two free neighbours (a merge was cut short): fold this one into the previous.
      RemoveFree(heap, base, prev);
      At(base, prev)->size += block->size;
      block->magic = 0;
      PushFree(heap, base, prev);
      b = prev + At(base, prev)->size;
      continue;
    }
    if (block->state == kBlockFree) {
      PushFree(heap, base, b);
    } else {
      block->state = kBlockBusy;
      ++heap->busy_blocks;
    }
    prev = b;
    b += block->size;
  }
}

uint64_t HeapLargestFreeLocked(const HeapHeader* heap, const char* base) {
  uint64_t largest = 0;
  for (int bin = kHeapBins - 1; bin >= 0 && largest == 0; --bin) {
    for (uint64_t b = heap->free_heads[bin]; b != 0; b = At(base, b)->next_free) {
      largest = std::max(largest, At(base, b)->size - kBlockHeaderSize);
    }
  }
  return largest;
}

bool HeapContains(const HeapHeader* heap, const char* base, const void* ptr) {
  const char* p = static_cast<const char*>(ptr);
  return p >= base + heap->start && p < base + End(heap);
}

bool HeapCheckLocked(const HeapHeader* heap, const char* base) {
  uint64_t free_bytes = 0;
  uint64_t busy = 0;
  uint64_t free_blocks = 0;
  uint64_t prev = 0;
  for (uint64_t b = heap->start; b < End(heap);) {
    const BlockHeader* block = At(base, b);
    if (block->magic != kBlockMagic || block->size < kMinBlockSize / 2 ||
        block->size % 64 != 0 || b + block->size > End(heap)) {
      return false;
    }
    if (block->prev_size != (prev == 0 ? 0 : At(base, prev)->size)) return false;
    if (block->state == kBlockFree) {
      if (prev != 0 && At(base, prev)->state == kBlockFree) return false;
      free_bytes += block->size;
      ++free_blocks;
    } else if (block->state == kBlockBusy) {
      ++busy;
    } else {
      return false;
    }
    prev = b;
    b += block->size;
  }
  uint64_t listed = 0;
  for (int bin = 0; bin < kHeapBins; ++bin) {
    uint64_t prev_free = 0;
    for (uint64_t b = heap->free_heads[bin]; b != 0; b = At(base, b)->next_free) {
      const BlockHeader* block = At(base, b);
      if (block->state != kBlockFree || BinOf(block->size) != bin ||
          block->prev_free != prev_free || ++listed > free_blocks) {
        return false;
      }
      prev_free = b;
    }
  }
  return listed == free_blocks && free_bytes == heap->free_bytes && busy == heap->busy_blocks;
}

}  // namespace keel::memory_internal

#include "tickgame/entity_heap.h"

namespace tickgame {

EntityHeap::~EntityHeap() {
  for (Entity* e : all_) delete e;
}

Entity* EntityHeap::create(EntityKind kind) {
  auto* e = new Entity();
  e->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;  // 0 means "no entity" on the wire
  e->kind = kind;
  all_.push_back(e);
  ++allocated_since_collect_;
  ++total_allocated_;
  return e;
}

EntityHeap::CollectResult EntityHeap::collect(const RootVisitor& roots) {
  CollectResult r;
  mark_stack_.clear();
  auto push = [&](Entity* e) {
    if (e && !e->marked) { e->marked = true; mark_stack_.push_back(e); }
  };
  roots(push);
  // Explicit stack: long reference chains must not overflow the C++ stack.
  while (!mark_stack_.empty()) {
    Entity* e = mark_stack_.back();
    mark_stack_.pop_back();
    ++r.marked;
    for (Entity* c : e->refs) push(c);
  }
  std::size_t keep = 0;
  for (std::size_t i = 0; i < all_.size(); ++i) {
    Entity* e = all_[i];
    if (e->marked) {
      e->marked = false;
      all_[keep++] = e;
    } else {
      delete e;
      ++r.freed;
    }
  }
  all_.resize(keep);
  total_freed_ += r.freed;
  allocated_since_collect_ = 0;
  return r;
}

}  // namespace tickgame

//! Dense prefetch order: the cyclic order in which decode steps use the streamed tensors (layers
//! in graph order, a token's last layer wrapping to the next token's layer 0), how soon each
//! tensor is needed again, and which tensors lie within the prefetch depth ahead.
//!
//! Within a layer the order is learned from the graph: a tensor's place is fixed by its first
//! use; until then tensors are assumed in file order. Tensors outside the layers (output head,
//! embeddings) come after the last layer and are never read ahead.

/// The use order of a streamer's slots.
pub struct UseOrder {
    layer: Vec<Option<u32>>,
    /// Sort key of each slot: (layer, or `n_layer` outside the layers; place within the layer).
    key: Vec<(u32, u64)>,
    /// Slots in use order, and each slot's index in it.
    cycle: Vec<usize>,
    pos: Vec<usize>,
    learned: Vec<bool>,
    next_rank: u64,
    n_layer: u32,
}

/// Places of tensors not used yet sort after every learned one.
const UNSEEN: u64 = 1 << 62;

impl UseOrder {
    /// Slot `i` has `layers[i]` (None: outside the layers) and data at file offset
    /// `offsets[i]`; `n_layer` is the model's layer count (layers beyond it count as outside).
    pub fn new(layers: &[Option<u32>], offsets: &[u64], n_layer: u32) -> UseOrder {
        let layer: Vec<Option<u32>> = layers.iter().map(|l| l.filter(|&l| l < n_layer)).collect();
        let key = layer
            .iter()
            .zip(offsets)
            .map(|(l, &o)| (l.unwrap_or(n_layer), UNSEEN + o.min(UNSEEN - 1)))
            .collect();
        let n = layer.len();
        let mut order = UseOrder {
            layer,
            key,
            cycle: (0..n).collect(),
            pos: vec![0; n],
            learned: vec![false; n],
            next_rank: 0,
            n_layer,
        };
        order.sort();
        order
    }

    /// The layer of a tensor named `blk.N.*`.
    pub fn layer_of(name: &str) -> Option<u32> {
        name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
    }

    pub fn layer(&self, i: usize) -> Option<u32> {
        self.layer[i]
    }

    /// Slot `i` is used now; its first use fixes its place within its layer.
    pub fn used(&mut self, i: usize) {
        if !self.learned[i] {
            self.learned[i] = true;
            self.key[i].1 = self.next_rank;
            self.next_rank += 1;
            self.sort();
        }
    }

    fn sort(&mut self) {
        let key = &self.key;
        self.cycle.sort_by_key(|&i| (key[i], i));
        for (p, &i) in self.cycle.iter().enumerate() {
            self.pos[i] = p;
        }
    }

    /// How many places after `from` slot `i` comes in the cycle: 0 for `from` itself, and the
    /// most for the tensor used just before `from`.
    pub fn distance(&self, from: usize, i: usize) -> usize {
        let n = self.cycle.len();
        (self.pos[i] + n - self.pos[from]) % n
    }

    /// The slots after `from` in use order whose layer is at most `depth` layers after
    /// `from`'s (the rest of its own layer first, wrapping from the last layer to layer 0),
    /// nearest first; empty when `from` is outside the layers.
    pub fn ahead(&self, from: usize, depth: u32) -> Vec<usize> {
        let Some(base) = self.layer[from] else {
            return Vec::new();
        };
        let n_layer = self.n_layer.max(1);
        let depth = depth.min(n_layer - 1);
        let n = self.cycle.len();
        let mut out = Vec::new();
        for step in 1..n {
            let i = self.cycle[(self.pos[from] + step) % n];
            let Some(l) = self.layer[i] else { continue };
            if (l + n_layer - base) % n_layer > depth {
                break;
            }
            out.push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tensors in each of `n` layers, in file order, and one output head.
    fn order(n: u32) -> UseOrder {
        let mut layers: Vec<Option<u32>> = (0..n).flat_map(|l| [Some(l); 3]).collect();
        layers.push(None);
        let offsets: Vec<u64> = (0..layers.len() as u64).map(|i| i * 1000).collect();
        UseOrder::new(&layers, &offsets, n)
    }

    #[test]
    fn layer_names_parse() {
        assert_eq!(UseOrder::layer_of("blk.12.ffn_up.weight"), Some(12));
        assert_eq!(UseOrder::layer_of("output.weight"), None);
        assert_eq!(UseOrder::layer_of("blk.x.ffn_up.weight"), None);
    }

    #[test]
    fn ahead_covers_the_rest_of_the_layer_then_depth_layers_wrapping() {
        let o = order(4);
        // Slot 4 is layer 1's second tensor.
        assert_eq!(o.ahead(4, 0), vec![5]);
        assert_eq!(o.ahead(4, 1), vec![5, 6, 7, 8]);
        // From the last layer, depth 2 wraps past the output head to layers 0 and 1.
        assert_eq!(o.ahead(9, 2), vec![10, 11, 0, 1, 2, 3, 4, 5]);
        // Depth is capped at the other layers: the layer's earlier tensors come last.
        assert_eq!(o.ahead(4, 99), vec![5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3]);
        assert!(o.ahead(12, 2).is_empty());
    }

    #[test]
    fn first_uses_fix_the_order_within_a_layer() {
        let mut o = order(2);
        // The graph uses layer 0's tensors as 2, 0, 1.
        for i in [2, 0, 1] {
            o.used(i);
        }
        assert_eq!(o.ahead(2, 0), vec![0, 1]);
        assert_eq!(o.distance(2, 1), 2);
        // The tensor just used is needed last.
        assert_eq!(o.distance(0, 2), 6);
        assert_eq!(o.distance(0, 0), 0);
    }
}

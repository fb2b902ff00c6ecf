//! Tensor roles: what each llama.cpp tensor name does, and which placement group it belongs to.

use serde::{Deserialize, Serialize};

macro_rules! roles {
    ($( $variant:ident = $stem:literal => $group:ident; )*) => {
        /// The job of a tensor, from its llama.cpp name (`blk.3.ffn_down_exps.weight` ->
        /// `FfnDownExps`). Biases and scales share the role of the weight they belong to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Role { $( $variant, )* Other }

        impl Role {
            /// The llama.cpp name stem (`attn_q`, `ffn_gate_exps`, ...); `other` for unknown names.
            pub fn stem(self) -> &'static str {
                match self { $( Role::$variant => $stem, )* Role::Other => "other" }
            }

            /// The placement group this role belongs to.
            pub fn group(self) -> Group {
                match self { $( Role::$variant => Group::$group, )* Role::Other => Group::Other }
            }

            fn from_stem(stem: &str) -> Role {
                match stem { $( $stem => Role::$variant, )* _ => Role::Other }
            }

            /// Every role, `Other` last.
            pub const ALL: &'static [Role] = &[ $( Role::$variant, )* Role::Other ];
        }
    };
}

roles! {
    TokenEmbd = "token_embd" => Embedding;
    TokenEmbdNorm = "token_embd_norm" => Embedding;
    PosEmbd = "position_embd" => Embedding;
    TokenTypes = "token_types" => Embedding;
    Output = "output" => Output;
    OutputNorm = "output_norm" => Output;
    AttnNorm = "attn_norm" => Norm;
    AttnNorm2 = "attn_norm_2" => Norm;
    AttnPostNorm = "post_attention_norm" => Norm;
    AttnQNorm = "attn_q_norm" => Norm;
    AttnKNorm = "attn_k_norm" => Norm;
    AttnQ = "attn_q" => Attention;
    AttnK = "attn_k" => Attention;
    AttnV = "attn_v" => Attention;
    AttnOutput = "attn_output" => Attention;
    AttnQkv = "attn_qkv" => Attention;
    AttnSinks = "attn_sinks" => Attention;
    AttnQA = "attn_q_a" => Attention;
    AttnQANorm = "attn_q_a_norm" => Norm;
    AttnQB = "attn_q_b" => Attention;
    AttnKvAMqa = "attn_kv_a_mqa" => Attention;
    AttnKvANorm = "attn_kv_a_norm" => Norm;
    AttnKvB = "attn_kv_b" => Attention;
    AttnKB = "attn_k_b" => Attention;
    AttnVB = "attn_v_b" => Attention;
    FfnNorm = "ffn_norm" => Norm;
    FfnPostNorm = "post_ffw_norm" => Norm;
    FfnGate = "ffn_gate" => DenseFfn;
    FfnUp = "ffn_up" => DenseFfn;
    FfnDown = "ffn_down" => DenseFfn;
    FfnGateInp = "ffn_gate_inp" => Router;
    ExpProbsB = "exp_probs_b" => Router;
    FfnGateExps = "ffn_gate_exps" => Experts;
    FfnUpExps = "ffn_up_exps" => Experts;
    FfnDownExps = "ffn_down_exps" => Experts;
    FfnGateUpExps = "ffn_gate_up_exps" => Experts;
    FfnGateShexp = "ffn_gate_shexp" => SharedExperts;
    FfnUpShexp = "ffn_up_shexp" => SharedExperts;
    FfnDownShexp = "ffn_down_shexp" => SharedExperts;
    FfnGateInpShexp = "ffn_gate_inp_shexp" => SharedExperts;
}

/// What the solver places together: a layer's attention block, its norms, router, dense FFN,
/// routed experts (one unit per expert) or shared experts; embeddings and the output head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Embedding,
    Attention,
    Norm,
    Router,
    DenseFfn,
    Experts,
    SharedExperts,
    Output,
    Other,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Embedding => "embedding",
            Group::Attention => "attention",
            Group::Norm => "norm",
            Group::Router => "router",
            Group::DenseFfn => "dense_ffn",
            Group::Experts => "experts",
            Group::SharedExperts => "shared_experts",
            Group::Output => "output",
            Group::Other => "other",
        }
    }
}

/// A tensor name split into its layer (for `blk.N.*`) and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedName {
    pub layer: Option<u32>,
    pub role: Role,
}

/// Suffixes that belong to a weight rather than naming a tensor of their own.
const SUFFIXES: &[&str] = &[
    ".weight",
    ".bias",
    ".scale",
    ".input_scale",
    ".weight_scale",
];

/// Classifies a llama.cpp tensor name.
pub fn parse_name(name: &str) -> ParsedName {
    let (layer, rest) = match name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
        Some((n, rest)) => match n.parse::<u32>() {
            Ok(l) => (Some(l), rest),
            Err(_) => (None, name),
        },
        None => (None, name),
    };
    let stem = SUFFIXES
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    let role = Role::from_stem(stem);
    // A layer-scoped stem outside `blk.N.` (or a global one inside) is not what llama.cpp writes.
    let global = matches!(role.group(), Group::Embedding | Group::Output);
    let role = if global == layer.is_none() {
        role
    } else {
        Role::Other
    };
    ParsedName { layer, role }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_roles() {
        let p = parse_name("blk.12.ffn_down_exps.weight");
        assert_eq!((p.layer, p.role), (Some(12), Role::FfnDownExps));
        assert_eq!(
            parse_name("blk.0.ffn_gate_inp.weight").role,
            Role::FfnGateInp
        );
        assert_eq!(
            parse_name("blk.0.ffn_gate_inp_shexp.weight").role,
            Role::FfnGateInpShexp
        );
        assert_eq!(parse_name("blk.3.attn_q.bias").role, Role::AttnQ);
        assert_eq!(parse_name("blk.3.exp_probs_b.bias").role, Role::ExpProbsB);
        assert_eq!(
            parse_name("token_embd.weight"),
            ParsedName {
                layer: None,
                role: Role::TokenEmbd
            }
        );
        assert_eq!(parse_name("output.weight").role, Role::Output);
        assert_eq!(parse_name("rope_freqs.weight").role, Role::Other);
        assert_eq!(parse_name("blk.x.attn_q.weight").role, Role::Other);
        assert_eq!(parse_name("blk.1.token_embd.weight").role, Role::Other);
        assert_eq!(parse_name("attn_q.weight").role, Role::Other);
    }

    #[test]
    fn every_role_has_a_unique_stem() {
        let mut stems: Vec<_> = Role::ALL.iter().map(|r| r.stem()).collect();
        stems.sort();
        stems.dedup();
        assert_eq!(stems.len(), Role::ALL.len());
    }
}

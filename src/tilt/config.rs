//! Tilt's `config` namespace (see `builtins.rs` for the rest of Tilt's functions).

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{Value, dict::AllocDict};

use super::builtins::{Args, Kwargs, noted};

/// Records a `config.define_*` (a setting daca leaves at its default).
fn define<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    function: &str,
    args: Args<'v>,
    kwargs: Kwargs<'v>,
) -> anyhow::Result<NoneType> {
    noted(eval, function, &["name", "args", "usage"], args, kwargs)
}

/// Tilt's `config`: settings from the command line, of which daca passes none (each takes its
/// default), and the Tiltfile's own path.
#[starlark_module]
pub(super) fn config(builder: &mut GlobalsBuilder) {
    fn define_string<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "config.define_string", args, kwargs)
    }

    fn define_string_list<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "config.define_string_list", args, kwargs)
    }

    fn define_bool<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, "config.define_bool", args, kwargs)
    }

    fn parse<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(AllocDict::EMPTY))
    }

    fn set_enabled_resources<'v>(
        #[starlark(args)] args: Args<'v>,
        #[starlark(kwargs)] kwargs: Kwargs<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        noted(
            eval,
            "config.set_enabled_resources",
            &["resources"],
            args,
            kwargs,
        )
    }
}

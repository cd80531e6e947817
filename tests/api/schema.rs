//! The checked-in SDL is the contract: it must be what the code produces.

#[test]
fn schema_graphql_is_up_to_date() {
    let checked_in = include_str!("../../schema.graphql");
    let generated = closedloop::graphql::sdl();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "schema.graphql differs from the schema the code produces (first difference at line {line}:\n  \
             checked in: {:?}\n  generated:  {:?}).\nRun `cargo run -- schema > schema.graphql` and review the diff.",
            checked_in.lines().nth(line - 1).unwrap_or("<end of file>"),
            generated.lines().nth(line - 1).unwrap_or("<end of file>"),
        );
    }
}

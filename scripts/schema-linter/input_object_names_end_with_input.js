// graphql-schema-linter rule: every input object type is named `...Input` (STYLE.md, issue 25).
// Loaded by scripts/lint-schema.sh with --custom-rule-paths; NODE_PATH points at the pinned install.
const { ValidationError } = require('graphql-schema-linter/lib/validation_error');

function InputObjectNamesEndWithInput(context) {
  return {
    InputObjectTypeDefinition(node) {
      const name = node.name.value;
      if (!name.endsWith('Input')) {
        context.reportError(
          new ValidationError(
            'input-object-names-end-with-input',
            `The input object type \`${name}\` should be named \`...Input\`.`,
            [node.name],
          ),
        );
      }
    },
  };
}

module.exports = { InputObjectNamesEndWithInput };

"""The AWS target: the stack model rendered to CloudFormation (troposphere), linted, priced.

`template.render(platform, environment, rollout)` builds the template of one environment;
`synth` writes it and runs cfn-lint and checkov; `query` reads a rendered template back for
the compliance feature and the tests; `cost` prices the model with the table in `prices`.
"""

"""Reads template.yaml as CloudFormation would for one stack, for the tests.

Usage: python template_resolve.py TEMPLATE < context.json > resolved.json
       (a JSON list of contexts: a list of answers, the template read once)

The context gives what CloudFormation would know:
  {"Parameters": {"PortalMode": "api", ...},          # others: their Default
   "Pseudo": {"AWS::AccountId": "...", "AWS::Region": "...",
              "AWS::StackName": "...", "AWS::StackId": "..."},
   "Resources": {"ConnectorSecret": {"Ref": "arn:..."},
                 "ConnectorFunctionLogs": {"Arn": "arn:..."}, ...}}

and the answer holds, with every intrinsic function resolved and every
condition evaluated (resources whose Condition is false left out):
  {"Roles": {"ConnectorRole": {"Path", "AssumeRolePolicyDocument",
                               "Policies": [{"PolicyName", "PolicyDocument"}]}},
   "Functions": {"ConnectorFunction": {"Role": "ConnectorRole",
                                       "Environment": {"PORTAL_MODE": ...}}},
   "ManagedPolicies": {"UserPermissionsBoundary": {"Arn": <its Ref in the
                       context>, "Path", "Description", "PolicyDocument"}},
   "CustomResources": {"Connector": {"Type", "Properties"}},
   "Resources": {"<every resource>": {"Type", "Properties"}
                                    | {"Type", "Unresolved": "why"}},
   "Outputs": {"<every output whose Condition holds>": {"Value"}
                                                     | {"Unresolved": "why"}},
   "Rules": {"<every rule>": {"Applies": bool (its RuleCondition),
                              "Failed": [AssertDescription of each
                                         assertion that does not hold]}
                            | {"Unresolved": "why"}},
   "Parameters": {"<name>": value as resolved},
   "ParameterErrors": ["<name>: why CloudFormation refuses the value"]}

A stack CloudFormation would refuse is still resolved: "Rules" says which
rules fail (a rule that applies and has a Failed entry), "ParameterErrors"
which values do not match their AllowedPattern (matched whole, as
CloudFormation does; AllowedValues are checked as before: an error).

A custom resource's Properties are as CloudFormation sends them to the
function: numbers and booleans as strings. So a test gives each function
exactly the rights, the environment and the event the template gives it.
Anything it cannot resolve in Roles, Functions, ManagedPolicies and
CustomResources (a Ref to a resource the context does not name, an
intrinsic it does not know) is an error: a test must never run with a
guessed policy. "Resources" is for tests that read the template's other
resources: one that does not resolve says why instead.
"""
import json
import re
import sys

from cfnlint.decode import decode_str

NO_VALUE = object()


class Unresolved(Exception):
    pass


class Stack:
    def __init__(self, template: dict, context: dict):
        self.template = template
        params = {}
        self.parameter_errors = []
        for name, spec in template.get("Parameters", {}).items():
            given = context.get("Parameters", {}).get(name)
            value = given if given is not None else spec.get("Default")
            if value is None:
                raise Unresolved(f"parameter {name} has no value and no default")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            allowed = spec.get("AllowedValues")
            values = value if isinstance(value, list) else [value]
            if allowed and any(str(v) not in [str(a) for a in allowed] for v in values):
                raise Unresolved(f"parameter {name}={value!r} is not one of {allowed}")
            params[name] = value if isinstance(value, list) else str(value)
            pattern = spec.get("AllowedPattern")
            if pattern is not None and not all(re.fullmatch(pattern, str(v)) for v in values):
                self.parameter_errors.append(
                    f"{name}: {value!r} does not match AllowedPattern {pattern}")
        pseudo = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        pseudo.update(context.get("Pseudo", {}))
        self.refs = {**params, **pseudo, "AWS::NoValue": NO_VALUE}
        self.resources = context.get("Resources", {})
        self.conditions: dict = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise Unresolved(f"unknown condition {name}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    def ref(self, name: str):
        if name in self.refs:
            return self.refs[name]
        if name in self.resources and "Ref" in self.resources[name]:
            return self.resources[name]["Ref"]
        raise Unresolved(f"Ref {name}: not a parameter, and the context does not name it")

    def get_att(self, name: str, attribute: str):
        try:
            return self.resources[name][attribute]
        except KeyError:
            raise Unresolved(f"GetAtt {name}.{attribute}: the context does not name it") from None

    def sub(self, text: str, variables: dict) -> str:
        def one(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                return str(self.get_att(*inner.split(".", 1)))
            value = self.ref(inner)
            if isinstance(value, list):
                raise Unresolved(f"Sub ${{{inner}}} is a list")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref":
                    return self.ref(arg)
                if key == "Condition" and isinstance(arg, str):
                    return self.condition(arg)
                if key.startswith("Fn::"):
                    return self.function(key, arg)
            out = {}
            for k, v in node.items():
                r = self.resolve(v)
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(node, list):
            return [r for r in (self.resolve(v) for v in node) if r is not NO_VALUE]
        return node

    def function(self, key: str, arg):
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(x) for x in arg)
        if key == "Fn::Or":
            return any(self.resolve(x) for x in arg)
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            text, variables = arg
            return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if key == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(name, attribute)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(x) for x in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            sep, text = arg
            return self.resolve(text).split(sep)
        if key == "Fn::Contains":  # Rules only
            items, value = (self.resolve(x) for x in arg)
            return str(value) in [str(i) for i in items]
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(x) for x in arg)
            try:
                return self.template["Mappings"][mapping][str(top)][second]
            except KeyError:
                raise Unresolved(f"FindInMap {mapping}.{top}.{second}: no such entry") from None
        raise Unresolved(f"{key} is not supported by the test bed's resolver")


def as_sent(value):
    """A custom resource's property as CloudFormation sends it: scalars as
    strings (a boolean as "true"/"false"), lists and maps kept."""
    if isinstance(value, dict):
        return {k: as_sent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def resolve_all(template: dict, stack: Stack) -> dict:
    out: dict = {"Roles": {}, "Functions": {}, "ManagedPolicies": {},
                 "CustomResources": {}, "Resources": {}}
    for name, res in template["Resources"].items():
        if "Condition" in res and not stack.condition(res["Condition"]):
            continue
        kind, props = res["Type"], res.get("Properties", {})
        if kind == "AWS::IAM::Role":
            out["Roles"][name] = stack.resolve(props)
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            role = props.get("Role", {}).get("Fn::GetAtt")
            role = role.split(".")[0] if isinstance(role, str) else (role or [None])[0]
            env = props.get("Environment", {}).get("Variables", {})
            out["Functions"][name] = {"Role": role, "Environment": stack.resolve(env)}
        elif kind == "AWS::IAM::ManagedPolicy":
            out["ManagedPolicies"][name] = {"Arn": stack.ref(name), **stack.resolve(props)}
        elif kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            out["CustomResources"][name] = {"Type": kind, "Properties": as_sent(stack.resolve(props))}
        try:
            out["Resources"][name] = {"Type": kind, "Properties": stack.resolve(props)}
        except Unresolved as e:
            out["Resources"][name] = {"Type": kind, "Unresolved": str(e)}
    out["Outputs"] = {}
    for name, output in template.get("Outputs", {}).items():
        if "Condition" in output and not stack.condition(output["Condition"]):
            continue
        try:
            out["Outputs"][name] = {"Value": stack.resolve(output["Value"])}
        except Unresolved as e:
            out["Outputs"][name] = {"Unresolved": str(e)}
    out["Rules"] = {}
    for name, rule in template.get("Rules", {}).items():
        try:
            applies = bool(stack.resolve(rule.get("RuleCondition", True)))
            failed = [
                a.get("AssertDescription", "")
                for a in rule.get("Assertions", [])
                if applies and not stack.resolve(a["Assert"])
            ]
            out["Rules"][name] = {"Applies": applies, "Failed": failed}
        except Unresolved as e:
            out["Rules"][name] = {"Unresolved": str(e)}
    out["Parameters"] = {k: v for k, v in stack.refs.items() if k in template.get("Parameters", {})}
    out["ParameterErrors"] = stack.parameter_errors
    return out


def main() -> None:
    template, problems = decode_str(open(sys.argv[1]).read())
    if problems:
        sys.exit(f"cannot read {sys.argv[1]}: {problems}")
    template = json.loads(json.dumps(template))
    given = json.load(sys.stdin)
    contexts = given if isinstance(given, list) else [given]
    try:
        # A copy per stack: resolve_all must not see another stack's answer.
        out = [resolve_all(json.loads(json.dumps(template)), Stack(template, c)) for c in contexts]
    except Unresolved as e:
        sys.exit(f"template_resolve: {e}")
    json.dump(out if isinstance(given, list) else out[0], sys.stdout, indent=1)


if __name__ == "__main__":
    main()

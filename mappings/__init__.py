"""The declarative field-mapping engine: remote record <-> canonical record.

A mapping spec (YAML or JSON) lists rules from source paths to target fields with transforms,
constants, defaults, conditions and nested lists. `compile_mapping` validates a spec once and
returns a `CompiledMapping` whose `apply` maps one record and never raises for bad data. This
package imports nothing of the project (see DESIGN.md): only the standard library, marshmallow
and PyYAML. The spec format and every transform are described in docs/mappings.md.
"""

from mappings.canonical import DIRECTIONS, OBJECTS, CanonicalField, compliance_record
from mappings.engine import CompiledMapping, MappingOutcome, compile_mapping, jsonable
from mappings.shipped import DEFAULTS, default_spec
from mappings.spec import MappingSpecError, load_spec_text, validate_spec
from mappings.transforms import TRANSFORMS, Transform, TransformError, transform

__all__ = [
    "DEFAULTS",
    "DIRECTIONS",
    "OBJECTS",
    "TRANSFORMS",
    "CanonicalField",
    "CompiledMapping",
    "MappingOutcome",
    "MappingSpecError",
    "Transform",
    "TransformError",
    "compile_mapping",
    "compliance_record",
    "default_spec",
    "jsonable",
    "load_spec_text",
    "transform",
    "validate_spec",
]

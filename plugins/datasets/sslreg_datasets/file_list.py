"""file_list: images named in a text file, one ``path[,label]`` per line."""

from __future__ import annotations

import builtins
from typing import Any, ClassVar

from pydantic import Field

from sslreg_datasets.base import FileSource, SourceConfig, existing_dir, existing_file, list_lines


class FileListConfig(SourceConfig):
    """Options of file_list."""

    name: str = "file_list"
    list: str | None = Field(
        None,
        description="Required. Text file, one 'path[,label]' per line; blank lines and lines starting with # are"
        " skipped.",
    )
    root: str | None = Field(
        None, description="Folder relative paths are resolved against (default: the list's folder)."
    )
    delimiter: str = Field(",", min_length=1, description="Separates the path from the label (the last one on a line).")
    class_names: builtins.list[str] | None = Field(
        None, description="Class names in target order; labels may then be names or indices (default: from the labels)."
    )


class FileList(FileSource):
    """Images listed in a text file; the label (an int index or a class name) is optional for the whole list.

    Without labels the source is unlabeled (target None, target_kind "none"). With labels that are names and no
    class_names option, the classes are the sorted distinct names. Paths may be absolute.
    """

    name: ClassVar[str] = "file_list"
    Config: ClassVar[type[SourceConfig]] = FileListConfig
    config: FileListConfig
    consumes: ClassVar[str] = "a text file of 'path[,label]' lines"
    produces: ClassVar[str] = "Sample(image RGB uint8, class index or None, key)"
    target_kind: ClassVar[str] = "class"

    def __init__(self, config: FileListConfig) -> None:
        super().__init__(config)
        listing = existing_file(config.list, self.name, "list")
        self._root = existing_dir(config.root, self.name) if config.root else listing.parent
        rows = []
        for number, text in list_lines(listing):
            path, _, label = text.rpartition(config.delimiter) if config.delimiter in text else (text, "", "")
            rows.append((number, path.strip(), label.strip()))
        if not rows:
            raise ValueError(f"dataset {self.name!r}: list {str(listing)!r} names no images")
        labelled = [bool(label) for _, _, label in rows]
        if any(labelled) and not all(labelled):
            number = rows[labelled.index(False) if labelled[0] else labelled.index(True)][0]
            raise ValueError(f"dataset {self.name!r}: {listing}:{number}: some lines have a label and some do not")
        self._files = [path for _, path, _ in rows]
        self._classes: list[str] = list(config.class_names or [])
        if all(labelled):
            self._targets = self._parse_labels(rows, str(listing))
        else:
            self.target_kind = "none"  # unlabeled list: overrides the class default for this instance

    def _parse_labels(self, rows: list[tuple[int, str, str]], listing: str) -> list[Any]:
        if not self._classes and not all(label.lstrip("-").isdigit() for _, _, label in rows):
            self._classes = sorted({label for _, _, label in rows})
        lookup = {name: index for index, name in enumerate(self._classes)}
        targets = []
        for number, _, label in rows:
            if label in lookup:
                target = lookup[label]
            elif label.lstrip("-").isdigit():
                target = int(label)
            else:
                raise ValueError(f"dataset {self.name!r}: {listing}:{number}: unknown class {label!r}")
            if target < 0 or (self._classes and target >= len(self._classes)):
                raise ValueError(f"dataset {self.name!r}: {listing}:{number}: label {target} out of range")
            targets.append(target)
        if not self._classes:
            self._classes = [str(index) for index in range(max(targets) + 1)]
        return targets

    @property
    def class_names(self) -> list[str]:
        return list(self._classes) if self._targets is not None else []

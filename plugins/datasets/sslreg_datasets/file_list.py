"""file_list: images named in a text file, one ``path[,label]`` per line."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from pydantic import Field

from sslreg import UserError
from sslreg_datasets.base import FileSource, SourceConfig, list_lines
from sslreg_datasets.checks import file_problem, first_line, folder_problem


class FileListConfig(SourceConfig):
    """Options of file_list."""

    name: str = "file_list"
    list: str = Field(
        description="Text file, one 'path[,label]' per line; blank lines and lines starting with # are skipped."
    )
    root: str | None = Field(
        None, description="Folder relative paths are resolved against (default: the list's folder)."
    )
    delimiter: str = Field(",", min_length=1, description="Separates the path from the label (the last one on a line).")
    class_names: builtins.list[str] | None = Field(
        None, description="Class names in target order; labels may then be names or indices (default: from the labels)."
    )


def split_line(text: str, delimiter: str) -> tuple[str, str]:
    """(path, label) of one list line; the label is '' when the line has none."""
    path, _, label = text.rpartition(delimiter) if delimiter in text else (text, "", "")
    return path.strip(), label.strip()


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

    @classmethod
    def check(cls, config: FileListConfig) -> builtins.list[str]:  # type: ignore[override]
        """The list and root exist, the list names an image, and its first image is there (one stat)."""
        problems = [
            p for p in (file_problem("list", config.list), config.root and folder_problem("root", config.root)) if p
        ]
        if problems:
            return problems
        listing = Path(config.list).expanduser()
        line = first_line(listing)
        if line is None:
            return [f"list {config.list!r} names no images"]
        number, text = line
        path, _ = split_line(text, config.delimiter)
        root = Path(config.root).expanduser() if config.root else listing.parent
        if not (root / path).is_file():
            where = f"root {config.root!r}" if config.root else "the list's folder"
            return [f"list {config.list!r} line {number}: image {path!r} does not exist under {where}"]
        return []

    def __init__(self, config: FileListConfig) -> None:
        super().__init__(config)  # runs check(): list and root exist, the first image is there
        listing = Path(config.list).expanduser()
        self._root = Path(config.root).expanduser() if config.root else listing.parent
        rows = [(number, *split_line(text, config.delimiter)) for number, text in list_lines(listing, self.name)]
        labelled = [bool(label) for _, _, label in rows]
        if any(labelled) and not all(labelled):
            number = rows[labelled.index(False) if labelled[0] else labelled.index(True)][0]
            self._fail(f"{listing}:{number}: some lines have a label and some do not")
        self._files = [path for _, path, _ in rows]
        self._classes: builtins.list[str] = builtins.list(config.class_names or [])
        if all(labelled):
            self._targets = self._parse_labels(rows, str(listing))
        else:
            self.target_kind = "none"  # unlabeled list: overrides the class default for this instance

    def _fail(self, problem: str) -> NoReturn:
        raise UserError(f"dataset {self.name!r}: list {problem}")

    def _parse_labels(self, rows: builtins.list[tuple[int, str, str]], listing: str) -> builtins.list[Any]:
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
                self._fail(f"{listing}:{number}: unknown class {label!r} (class_names: {self._classes})")
            if target < 0 or (self._classes and target >= len(self._classes)):
                self._fail(f"{listing}:{number}: label {target} out of range")
            targets.append(target)
        if not self._classes:
            self._classes = [str(index) for index in range(max(targets) + 1)]
        return targets

    @property
    def class_names(self) -> builtins.list[str]:
        return builtins.list(self._classes) if self._targets is not None else []
